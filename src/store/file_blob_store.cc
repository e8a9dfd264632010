// BlobStore on a local folder: root/ab/cdef… with temp files in root/.tmp.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "store/store.h"

namespace detops {
namespace fs = std::filesystem;
namespace {

class FileBlobStore final : public BlobStore {
 public:
  explicit FileBlobStore(fs::path root) : root_(std::move(root)) {}

  Result<std::string> Put(std::string_view bytes) override {
    std::string sha = Sha256Hex(bytes);
    if (Has(sha)) return sha;
    fs::path tmp = TempPath();
    {
      FILE* f = std::fopen(tmp.c_str(), "wb");
      if (!f) return Status::IOError(tmp.string() + ": cannot create: " + std::strerror(errno));
      bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
      ok = (std::fflush(f) == 0) && ok;
      ok = (::fsync(::fileno(f)) == 0) && ok;
      ok = (std::fclose(f) == 0) && ok;
      if (!ok) {
        fs::remove(tmp);
        return Status::IOError(tmp.string() + ": write failed");
      }
    }
    RETURN_IF_ERROR(Publish(tmp, sha));
    return sha;
  }

  Result<std::string> PutFile(const fs::path& file) override { return CopyIn(file, ""); }

  Result<std::string> PutFileWithHash(const fs::path& file, const std::string& sha) override {
    if (Has(sha)) return sha;
    return CopyIn(file, sha);
  }

  bool Has(const std::string& sha) const override {
    std::error_code ec;
    return IsSha256Hex(sha) && fs::exists(PathOf(sha), ec);
  }

  Result<std::string> Get(const std::string& sha) const override {
    if (!IsSha256Hex(sha)) return Status::InvalidInput("not a blob address: '" + sha + "'");
    auto bytes = ReadFile(PathOf(sha));
    if (!bytes.ok()) return Status::NotFound("blob " + sha + " is missing from " + root_.string());
    return bytes;
  }

  fs::path PathOf(const std::string& sha) const override {
    return root_ / sha.substr(0, 2) / sha.substr(2);
  }

  std::vector<std::string> List() const override {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& shard : fs::directory_iterator(root_, ec)) {
      std::string prefix = shard.path().filename().string();
      if (prefix.size() != 2 || !shard.is_directory()) continue;
      for (const auto& f : fs::directory_iterator(shard.path(), ec)) {
        std::string sha = prefix + f.path().filename().string();
        if (IsSha256Hex(sha)) out.push_back(sha);
      }
    }
    return out;
  }

  Status Remove(const std::string& sha) override {
    std::error_code ec;
    fs::remove(PathOf(sha), ec);
    if (ec) return Status::IOError(PathOf(sha).string() + ": " + ec.message());
    return Status::Ok();
  }

 private:
  fs::path TempPath() {
    static std::atomic<uint64_t> counter{0};
    return root_ / ".tmp" / (std::to_string(::getpid()) + "-" + std::to_string(counter++));
  }

  // Copies `file` into a temp file, hashing as it goes; checks `expected`
  // when given; publishes under the hash.
  Result<std::string> CopyIn(const fs::path& file, const std::string& expected) {
    int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return Status::IOError(file.string() + ": cannot open: " + std::strerror(errno));
    fs::path tmp = TempPath();
    int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      ::close(in);
      return Status::IOError(tmp.string() + ": cannot create: " + std::strerror(errno));
    }
    Sha256 h;
    char buf[1 << 16];
    bool ok = true;
    ssize_t n;
    while ((n = ::read(in, buf, sizeof buf)) > 0) {
      h.Update(buf, static_cast<size_t>(n));
      if (::write(out, buf, static_cast<size_t>(n)) != n) {
        ok = false;
        break;
      }
    }
    if (n < 0) ok = false;
    ok = (::fsync(out) == 0) && ok;
    ok = (::close(out) == 0) && ok;
    ::close(in);
    if (!ok) {
      fs::remove(tmp);
      return Status::IOError(file.string() + ": copy into blob store failed");
    }
    std::string sha = h.HexDigest();
    if (!expected.empty() && sha != expected) {
      fs::remove(tmp);
      return Status::Corruption(file.string() + ": changed while being imported (hash mismatch)");
    }
    RETURN_IF_ERROR(Publish(tmp, sha));
    return sha;
  }

  Status Publish(const fs::path& tmp, const std::string& sha) {
    fs::path dst = PathOf(sha);
    std::error_code ec;
    fs::create_directories(dst.parent_path(), ec);
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
      std::string why = std::strerror(errno);
      fs::remove(tmp, ec);
      return Status::IOError(dst.string() + ": cannot publish blob: " + why);
    }
    return Status::Ok();
  }

  fs::path root_;
};

}  // namespace

Result<std::unique_ptr<BlobStore>> OpenFileBlobStore(const fs::path& root) {
  std::error_code ec;
  fs::create_directories(root / ".tmp", ec);
  if (ec) return Status::IOError(root.string() + ": cannot create blob store: " + ec.message());
  return std::unique_ptr<BlobStore>(std::make_unique<FileBlobStore>(root));
}

}  // namespace detops
