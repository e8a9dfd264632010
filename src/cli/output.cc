#include "cli/output.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>

namespace detops::cli {

int Fail(const Status& status) {
  std::fprintf(stderr, "error: %s\n", status.message().c_str());
  switch (status.code()) {
    case StatusCode::kInvalidInput:
    case StatusCode::kAlreadyExists:
      return kExitBadInput;
    case StatusCode::kNotFound:
      return kExitNotFound;
    default:
      return kExitError;
  }
}

std::string Table::Render() const {
  std::vector<size_t> width;
  for (const auto& row : rows_) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

void PrintJson(const Json& j) { std::cout << j.dump(2) << "\n"; }

std::string Percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * fraction);
  return buf;
}

Progress::Progress(std::string label)
    : label_(std::move(label)), start_(std::chrono::steady_clock::now()), tty_(::isatty(2)) {}

void Progress::Update(size_t done, size_t total) {
  if (total == 0) return;
  auto now = std::chrono::steady_clock::now();
  int decile = static_cast<int>(10 * done / total);
  if (tty_) {
    if (drawn_ && done != total && now - last_draw_ < std::chrono::milliseconds(100)) return;
  } else if (decile == last_decile_) {
    return;
  }
  last_decile_ = decile;
  last_draw_ = now;
  drawn_ = true;
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0 ? done / secs : 0;
  double eta = rate > 0 ? (total - done) / rate : 0;
  const int bar = 24;
  int fill = static_cast<int>(bar * done / total);
  std::string b(static_cast<size_t>(fill), '=');
  if (fill < bar) b += '>' + std::string(static_cast<size_t>(bar - fill - 1), ' ');
  int e = static_cast<int>(eta);
  std::fprintf(stderr, "%s%s [%s] %zu/%zu  %.0f/s  ETA %d:%02d:%02d%s", tty_ ? "\r" : "",
               label_.c_str(), b.c_str(), done, total, rate, e / 3600, e / 60 % 60, e % 60,
               tty_ ? "\033[K" : "\n");
  std::fflush(stderr);
}

void Progress::Finish() {
  if (tty_ && drawn_) std::fprintf(stderr, "\n");
}

}  // namespace detops::cli
