#pragma once
// Test fixtures shared by unit and end-to-end tests.

#include <filesystem>
#include <string>

namespace detops::testing {

// A fresh empty directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

// Writes `text` to `path`, creating parent folders.
void WriteText(const std::filesystem::path& path, const std::string& text);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout, and stderr too unless it was left out
};
// Runs a shell command line and captures stdout and, when `with_stderr`,
// stderr (else stderr is discarded).
CommandResult RunCommand(const std::string& command_line, bool with_stderr = true);
// Path of the detops binary under test ($DETOPS_BIN, set by CTest).
std::string DetopsBin();

}  // namespace detops::testing
