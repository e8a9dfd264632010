#pragma once
// Output helpers shared by the commands: aligned tables, JSON to stdout,
// errors to stderr with an exit code, progress on stderr.

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/core.h"

namespace detops::cli {

// Exit codes: documented in `detops --help`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;       // runtime failure (I/O, corruption)
inline constexpr int kExitBadInput = 2;    // bad arguments or input data
inline constexpr int kExitNotFound = 3;    // no such dataset, version, file
inline constexpr int kExitValidation = 4;  // an error-level expectation failed

// Prints "error: <message>" to stderr and returns the exit code for it.
int Fail(const Status& status);

// Columns padded to their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

void PrintJson(const Json& j);
std::string Percent(double fraction);  // "93.5%"

// A progress line on stderr: "label  [=====>    ] 512/1000  3.1/s  ETA 0:02:37".
// Redrawn in place on a terminal, a line per 10% otherwise. Thread-compatible.
class Progress {
 public:
  explicit Progress(std::string label);
  void Update(size_t done, size_t total);
  void Finish();

 private:
  std::string label_;
  std::chrono::steady_clock::time_point start_;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
};

}  // namespace detops::cli
