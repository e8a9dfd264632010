#pragma once
// Test fixtures shared by unit and end-to-end tests.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
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

// The .jpg files under `dir` and its subfolders, sorted by path.
std::vector<std::filesystem::path> Jpegs(const std::filesystem::path& dir);

// Calls `done` until it returns true, sleeping `every` between calls, at
// most seconds * 1000 / every times (a slow `done` stretches the wait);
// true once it did, else what a last call returns.
template <typename F>
bool WaitFor(F done, int seconds,
             std::chrono::milliseconds every = std::chrono::milliseconds(100)) {
  const int64_t calls = seconds * int64_t{1000} / every.count();
  for (int64_t i = 0; i < calls; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(every);
  }
  return done();
}

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
