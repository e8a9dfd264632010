#pragma once
// Test fixtures shared by unit and end-to-end tests.

#include <filesystem>
#include <string>
#include <vector>

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

// `jpeg` (a JPEG file's bytes) with an EXIF APP1 segment saying
// `orientation` (1..8; 6: rotate 90° clockwise to display) after its SOI.
std::string WithExifOrientation(const std::string& jpeg, int orientation);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout, and stderr too unless it was left out
};
// Runs a shell command line and captures stdout and, when `with_stderr`,
// stderr (else stderr is discarded).
CommandResult RunCommand(const std::string& command_line, bool with_stderr = true);
// Path of the detops binary under test ($DETOPS_BIN, set by CTest).
std::string DetopsBin();

// A program started in the background (fork + exec, no shell), its stdout
// and stderr going to `output_file`. Killed (SIGKILL) on destruction if it
// still runs.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& output_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  int pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // The exit code (128 + signal when killed), or -1 after `timeout_s`.
  int Wait(double timeout_s);
  // Everything written so far.
  std::string Output() const;
  // Waits until the output contains `text`; false after `timeout_s` or
  // when the program exits first.
  bool WaitForOutput(const std::string& text, double timeout_s);

 private:
  int pid_ = -1;
  int exit_code_ = -1;
  std::filesystem::path output_;
};

}  // namespace detops::testing
