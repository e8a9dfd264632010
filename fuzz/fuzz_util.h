#pragma once
// Helpers shared by the fuzz targets.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace detops::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A scratch folder for the readers that take a folder, made once per process
// under $TMPDIR and removed at exit. The readers are what users run on their
// files, so the targets write the input where a user's file would be.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/detops-fuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) std::abort();
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `bytes` to `rel` under the folder (parents created).
  void Write(const std::string& rel, std::string_view bytes) const {
    std::filesystem::path p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) std::abort();
  }

 private:
  std::filesystem::path path_;
};

// A reader's invariant on what it accepted: every box of every image names
// one of the set's classes. Traps (a finding) otherwise; a set the reader
// refused (not ok) has nothing to check.
template <typename SetResult>
void TrapUnlessBoxesNameClasses(const SetResult& set) {
  if (!set.ok()) return;
  for (const auto& img : set->images) {
    for (const auto& b : img.boxes) {
      if (b.class_id < 0 || b.class_id >= static_cast<int>(set->classes.size())) {
        __builtin_trap();
      }
    }
  }
}

}  // namespace detops::fuzz
