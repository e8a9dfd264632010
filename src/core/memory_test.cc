#include "core/memory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "testing/testutil.h"

namespace detops {
namespace {

constexpr size_t kSize = 256 * 1024;

// Maps `path` privately, read-only after `write` bytes were written into
// the mapping (as the dynamic loader does to relocated constants).
char* MapFile(const std::filesystem::path& path, bool write) {
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  void* p = ::mmap(nullptr, kSize, PROT_READ | (write ? PROT_WRITE : 0), MAP_PRIVATE, fd, 0);
  ::close(fd);
  EXPECT_NE(p, MAP_FAILED);
  char* c = static_cast<char*>(p);
  if (write) {
    std::memset(c, 'w', kSize);
    ::mprotect(c, kSize, PROT_READ);
  }
  return c;
}

int64_t ResidentKb(const void* addr) {
  // The Rss line of addr's mapping in /proc/self/smaps.
  FILE* f = std::fopen("/proc/self/smaps", "r");
  char line[512];
  bool in = false;
  int64_t rss = -1;
  while (f && std::fgets(line, sizeof line, f)) {
    unsigned long long a = 0, b = 0;
    if (std::sscanf(line, "%llx-%llx ", &a, &b) == 2 &&
        std::strchr(line, ' ') < std::strchr(line, ':')) {
      auto x = reinterpret_cast<unsigned long long>(addr);
      in = x >= a && x < b;
    } else if (in && std::strncmp(line, "Rss:", 4) == 0) {
      rss = std::atoll(line + 4);
      break;
    }
  }
  if (f) std::fclose(f);
  return rss;
}

TEST(MemoryTest, ReadsThisProcesssUsage) {
  auto u = ReadMemoryUsage();
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_GT(u->resident_bytes, 0);
  EXPECT_GT(u->file_bytes, 0);  // this test's own code
  EXPECT_LE(u->anon_bytes + u->file_bytes, u->resident_bytes + (1 << 20));
}

// Clean read-only file pages are given back and come back unchanged on the
// next read; pages the process wrote (then made read-only) are kept, so no
// written byte is ever lost.
TEST(MemoryTest, ReleasesCleanFilePagesAndKeepsWrittenOnes) {
  testing::TempDir dir;
  std::string bytes(kSize, '\0');
  for (size_t i = 0; i < kSize; ++i) bytes[i] = static_cast<char>('a' + i % 26);
  testing::WriteText(dir / "clean.bin", bytes);
  testing::WriteText(dir / "written.bin", bytes);
  char* clean = MapFile(dir / "clean.bin", false);
  char* written = MapFile(dir / "written.bin", true);
  int sum = 0;
  for (size_t i = 0; i < kSize; i += 4096) sum += static_cast<volatile char*>(clean)[i];
  EXPECT_NE(sum, 0);
  ASSERT_GE(ResidentKb(clean), static_cast<int64_t>(kSize / 1024));

  auto r = ReleaseColdMappedPages();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GE(r->bytes, static_cast<int64_t>(kSize));
  EXPECT_GE(r->mappings, 1);
  EXPECT_EQ(ResidentKb(clean), 0);
  EXPECT_GE(ResidentKb(written), static_cast<int64_t>(kSize / 1024));

  EXPECT_EQ(std::string(clean, kSize), bytes);                      // faulted back from the file
  EXPECT_EQ(std::string(written, kSize), std::string(kSize, 'w'));  // private copy kept
  // And the code of this test still runs, its pages faulted back in.
  EXPECT_TRUE(ReadMemoryUsage().ok());
  ::munmap(clean, kSize);
  ::munmap(written, kSize);
}

}  // namespace
}  // namespace detops
