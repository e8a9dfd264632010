#pragma once
// Output helpers shared by the commands: aligned tables, JSON to stdout,
// errors to stderr with an exit code, progress on stderr.

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
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

// The width tables fit in: $COLUMNS when set to a number, else the width of
// the terminal on stdout, else 100; never below kMinTableWidth.
inline constexpr size_t kMinTableWidth = 60;
size_t TerminalWidth();

// Characters as a terminal counts them (UTF-8 code points).
size_t DisplayWidth(std::string_view s);
// `s` cut to at most `width` display columns, "…" marking the cut: a path
// ('/' inside) keeps its start and its end ("/data/…/best.pt"), other text
// its start.
std::string Truncate(std::string_view s, size_t width);

// Columns padded to their widest cell, kept within a width. When the rows
// are wider, the widest columns shrink to a fair share of the width and
// their long values are cut (Truncate); the first `label_columns` (the row
// labels: an id, a key) keep their width while they take at most half of
// it. When even that would leave columns too narrow to read, the columns are
// split into blocks printed one after the other, each repeating the labels.
class Table {
 public:
  explicit Table(std::vector<std::string> header, size_t label_columns = 1)
      : rows_{std::move(header)}, label_columns_(label_columns) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  struct Layout {
    std::string text;
    size_t cut_cells = 0;  // values shortened with "…"
  };
  Layout Fit(size_t width) const;
  // Fit(width), then a footer line when values were cut.
  std::string Render(size_t width = TerminalWidth()) const;

 private:
  std::vector<std::vector<std::string>> rows_;
  size_t label_columns_;
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
