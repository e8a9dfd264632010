#include "cli/output.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
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

size_t TerminalWidth() {
  size_t width = 0;
  if (const char* env = std::getenv("COLUMNS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0) width = static_cast<size_t>(v);
  }
  winsize ws{};
  if (width == 0 && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) width = ws.ws_col;
  if (width == 0) width = 100;
  return std::max(width, kMinTableWidth);
}

namespace {

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The byte offset after the first `n` code points of `s`.
size_t PrefixBytes(std::string_view s, size_t n) {
  size_t i = 0;
  for (size_t seen = 0; i < s.size(); ++i) {
    if (!IsContinuation(s[i]) && seen++ == n) break;
  }
  return i;
}

constexpr std::string_view kEllipsis = "\u2026";

// Below this a column is too narrow to read: split the table instead.
constexpr size_t kReadableColumn = 12;
constexpr size_t kGap = 2;

// Widths for `natural` within `avail` (gaps excluded): columns narrower
// than an even share keep their width, the others share what is left.
std::vector<size_t> ShareWidths(const std::vector<size_t>& natural, size_t avail) {
  std::vector<size_t> order(natural.size()), width = natural;
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return natural[a] < natural[b]; });
  size_t left = avail;
  for (size_t k = 0; k < order.size(); ++k) {
    size_t share = left / (order.size() - k);
    if (natural[order[k]] <= share) {
      left -= natural[order[k]];
      continue;
    }
    // This and every wider column get the share; the remainder goes one
    // column each to the first of them.
    size_t extra = left - share * (order.size() - k);
    for (size_t j = k; j < order.size(); ++j) {
      width[order[j]] = std::max<size_t>(1, share + (j - k < extra ? 1 : 0));
    }
    break;
  }
  return width;
}

}  // namespace

size_t DisplayWidth(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return !IsContinuation(c); }));
}

std::string Truncate(std::string_view s, size_t width) {
  size_t n = DisplayWidth(s);
  if (n <= width) return std::string(s);
  if (width == 0) return "";
  size_t keep = width - 1;
  if (s.find('/') != std::string_view::npos && keep >= 8) {
    size_t head = keep / 3, tail = keep - head;
    size_t tail_at = PrefixBytes(s, n - tail);
    return std::string(s.substr(0, PrefixBytes(s, head))) + std::string(kEllipsis) +
           std::string(s.substr(tail_at));
  }
  return std::string(s.substr(0, PrefixBytes(s, keep))) + std::string(kEllipsis);
}

Table::Layout Table::Fit(size_t width) const {
  size_t ncols = 0;
  for (const auto& row : rows_) ncols = std::max(ncols, row.size());
  std::vector<size_t> natural(ncols, 0);
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size(); ++c) natural[c] = std::max(natural[c], DisplayWidth(row[c]));
  }
  const size_t labels = std::min(label_columns_, ncols);
  auto readable = [&](size_t c) {
    return c < labels ? natural[c] : std::min(natural[c], kReadableColumn);
  };
  auto fits = [&](const std::vector<size_t>& cols) {
    size_t sum = kGap * (cols.size() - 1);
    for (size_t c : cols) sum += readable(c);
    return sum <= width;
  };
  // Blocks of columns, each starting with the label columns.
  std::vector<std::vector<size_t>> blocks;
  std::vector<size_t> block;
  for (size_t c = 0; c < labels; ++c) block.push_back(c);
  for (size_t c = labels; c < ncols; ++c) {
    block.push_back(c);
    if (block.size() > labels + 1 && !fits(block)) {
      block.pop_back();
      blocks.push_back(block);
      block.resize(labels);
      block.push_back(c);
    }
  }
  blocks.push_back(block);

  Layout out;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const std::vector<size_t>& cols = blocks[b];
    std::vector<size_t> nat;
    for (size_t c : cols) nat.push_back(natural[c]);
    size_t gaps = kGap * (cols.size() - 1);
    size_t avail = width > gaps ? width - gaps : cols.size();
    // The row labels keep their width while they take at most half of it.
    size_t fixed = 0, fixed_width = 0;
    while (fixed < labels && fixed + 1 < cols.size() && fixed_width + nat[fixed] <= avail / 2) {
      fixed_width += nat[fixed++];
    }
    std::vector<size_t> rest(nat.begin() + fixed, nat.end());
    std::vector<size_t> w(nat.begin(), nat.begin() + fixed);
    for (size_t x : ShareWidths(rest, avail - fixed_width)) w.push_back(x);
    if (b > 0) out.text += "\n";
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < cols.size(); ++i) {
        std::string cell = cols[i] < row.size() ? row[cols[i]] : "";
        if (DisplayWidth(cell) > w[i]) {
          cell = Truncate(cell, w[i]);
          ++out.cut_cells;
        }
        line += cell;
        if (i + 1 < cols.size()) line += std::string(w[i] - DisplayWidth(cell) + kGap, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out.text += line + "\n";
    }
  }
  return out;
}

std::string Table::Render(size_t width) const {
  Layout l = Fit(width);
  if (l.cut_cells > 0) {  // lines under kMinTableWidth
    l.text +=
        std::to_string(l.cut_cells) + " value(s) cut to fit " + std::to_string(width) +
        " columns (marked \u2026)\nCOLUMNS sets the width; --json (if offered) has them all\n";
  }
  return l.text;
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
