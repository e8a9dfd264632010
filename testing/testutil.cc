#include "testing/testutil.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace detops::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::atomic<int> n{0};
  path_ = fs::temp_directory_path() /
          ("detops-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WriteText(const fs::path& path, const std::string& text) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

CommandResult RunCommand(const std::string& command_line, bool with_stderr) {
  CommandResult r;
  FILE* p = ::popen((command_line + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string DetopsBin() {
  const char* bin = std::getenv("DETOPS_BIN");
  return bin ? bin : "detops";
}

}  // namespace detops::testing
