#include "orchestrate/cron.h"

#include <cctype>
#include <ctime>
#include <string_view>
#include <vector>

namespace detops {
namespace {

constexpr int64_t kDay = 86400;

struct FieldSpec {
  const char* name;
  int min, max;
  const char* const* names;  // names[i] is the value min + i; nullptr: none
  int names_count;
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

// Day-of-week accepts 0-7 (7 is Sunday again); the names cover 0-6.
constexpr FieldSpec kFields[] = {
    {"minute", 0, 59, nullptr, 0},       {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0}, {"month", 1, 12, kMonthNames, 12},
    {"day-of-week", 0, 7, kDayNames, 7},
};

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

Status FieldError(const FieldSpec& f, std::string_view token, const std::string& why) {
  return Status::InvalidInput(std::string(f.name) + ": '" + std::string(token) + "' " + why);
}

// A number or (where the field has them) a name, within the field's range.
Result<int> ParseValue(const FieldSpec& f, std::string_view token) {
  if (token.empty()) return FieldError(f, token, "is empty (expected a number)");
  bool digits = true;
  for (char c : token) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits) {
    const int v = token.size() > 4 ? f.max + 1 : std::stoi(std::string(token));
    if (v < f.min || v > f.max) {
      return FieldError(f, token,
                        "is out of range " + std::to_string(f.min) + "-" + std::to_string(f.max));
    }
    return v;
  }
  const std::string lower = Lower(token);
  for (int i = 0; i < f.names_count; ++i) {
    if (lower == f.names[i]) return f.min + i;
  }
  if (f.names != nullptr) {
    return FieldError(f, token,
                      std::string("is not a number or a name (") + f.names[0] + ".." +
                          f.names[f.names_count - 1] + ")");
  }
  return FieldError(f, token, "is not a number");
}

// One list item: `*`, `v`, `a-b`, each optionally `/step` (`v/step`: v to
// the field's end). Sets the chosen values' bits.
Status ParseItem(const FieldSpec& f, std::string_view item, uint64_t& bits) {
  std::string_view range = item;
  int step = 1;
  bool has_step = false;
  if (size_t slash = item.find('/'); slash != std::string_view::npos) {
    range = item.substr(0, slash);
    std::string_view step_text = item.substr(slash + 1);
    bool digits = !step_text.empty() && step_text.size() <= 4;
    for (char c : step_text) digits = digits && std::isdigit(static_cast<unsigned char>(c));
    if (!digits) return FieldError(f, item, "has a bad step (expected */N, A-B/N or A/N)");
    step = std::stoi(std::string(step_text));
    if (step < 1) return FieldError(f, item, "has a step of 0 (expected 1 or more)");
    has_step = true;
  }
  // Day-of-week: `*` and `A/N` stop at 6, since 7 would repeat Sunday.
  const int last = f.max == 7 ? 6 : f.max;
  int lo, hi;
  if (range == "*") {
    lo = f.min;
    hi = last;
  } else if (size_t dash = range.find('-'); dash != std::string_view::npos) {
    if (dash == 0 || dash + 1 == range.size()) {
      return FieldError(f, item, "is not a number, a name, a range or a step");
    }
    ASSIGN_OR_RETURN(lo, ParseValue(f, range.substr(0, dash)));
    ASSIGN_OR_RETURN(hi, ParseValue(f, range.substr(dash + 1)));
    if (f.max == 7 && hi == 0 && lo > 0) hi = 7;  // "fri-sun"
    if (lo > hi) return FieldError(f, item, "is a range whose start is after its end");
  } else {
    ASSIGN_OR_RETURN(lo, ParseValue(f, range));
    hi = has_step ? last : lo;
  }
  for (int v = lo; v <= hi; v += step) bits |= uint64_t{1} << (f.max == 7 ? v % 7 : v);
  return Status::Ok();
}

Result<uint64_t> ParseField(const FieldSpec& f, std::string_view text) {
  uint64_t bits = 0;
  for (std::string_view item : Split(text, ',')) {
    if (item.empty()) return FieldError(f, text, "has an empty list item");
    RETURN_IF_ERROR(ParseItem(f, item, bits));
  }
  return bits;
}

std::string Expand(const std::string& shorthand) {
  const std::string s = Lower(shorthand);
  if (s == "@hourly") return "0 * * * *";
  if (s == "@daily" || s == "@midnight") return "0 0 * * *";
  if (s == "@weekly") return "0 0 * * 0";
  if (s == "@monthly") return "0 0 1 * *";
  if (s == "@yearly" || s == "@annually") return "0 0 1 1 *";
  return "";
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(const std::string& expr) {
  auto fail = [&](const Status& s) { return s.WithContext("cron '" + expr + "'"); };
  std::vector<std::string> fields;
  {
    std::string current;
    for (char c : expr) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (!current.empty()) fields.push_back(std::move(current));
        current.clear();
      } else {
        current += c;
      }
    }
    if (!current.empty()) fields.push_back(std::move(current));
  }
  if (fields.size() == 1 && fields[0][0] == '@') {
    const std::string expanded = Expand(fields[0]);
    if (expanded.empty()) {
      return fail(Status::InvalidInput(
          "'" + fields[0] +
          "' is not a known shorthand (@hourly, @daily, @midnight, @weekly, @monthly, @yearly, "
          "@annually)"));
    }
    ASSIGN_OR_RETURN(CronSchedule schedule, Parse(expanded));
    schedule.expr_ = expr;
    return schedule;
  }
  if (fields.size() != 5) {
    return fail(
        Status::InvalidInput("expected 5 fields (minute hour day-of-month month "
                             "day-of-week) or a shorthand such as @daily, got " +
                             std::to_string(fields.size())));
  }
  uint64_t bits[5];
  for (int i = 0; i < 5; ++i) {
    auto r = ParseField(kFields[i], fields[i]);
    if (!r.ok()) return fail(r.status());
    bits[i] = *r;
  }
  CronSchedule s;
  s.expr_ = expr;
  s.minutes_ = bits[0];
  s.hours_ = static_cast<uint32_t>(bits[1]);
  s.days_ = static_cast<uint32_t>(bits[2]);
  s.months_ = static_cast<uint16_t>(bits[3]);
  s.weekdays_ = static_cast<uint8_t>(bits[4]);
  // As in Vixie cron: a day field counts as unrestricted when it starts with '*'.
  s.days_star_ = fields[2][0] == '*';
  s.weekdays_star_ = fields[4][0] == '*';
  return s;
}

bool CronSchedule::DayMatches(int mday, int month, int wday) const {
  if (!(months_ >> month & 1)) return false;
  const bool dom = days_ >> mday & 1;
  const bool dow = weekdays_ >> wday & 1;
  if (days_star_ || weekdays_star_) return dom && dow;
  return dom || dow;
}

bool CronSchedule::Matches(int64_t unix_s) const {
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return false;
  return (minutes_ >> tm.tm_min & 1) && (hours_ >> tm.tm_hour & 1) &&
         DayMatches(tm.tm_mday, tm.tm_mon + 1, tm.tm_wday);
}

int64_t CronSchedule::Next(int64_t after_unix_s) const {
  const int64_t start = (FloorDiv(after_unix_s, 60) + 1) * 60;
  const int64_t first_day = FloorDiv(start, kDay);
  int h0 = static_cast<int>((start - first_day * kDay) / 3600);
  int m0 = static_cast<int>((start - first_day * kDay) % 3600 / 60);
  // Five years of days, leap days included.
  for (int64_t day = first_day; day <= first_day + 5 * 366; ++day) {
    const std::time_t t = static_cast<std::time_t>(day * kDay);
    std::tm tm{};
    if (gmtime_r(&t, &tm) != nullptr && DayMatches(tm.tm_mday, tm.tm_mon + 1, tm.tm_wday)) {
      for (int h = h0; h < 24; ++h) {
        if (!(hours_ >> h & 1)) continue;
        for (int m = (h == h0 ? m0 : 0); m < 60; ++m) {
          if (minutes_ >> m & 1) return day * kDay + h * 3600 + m * 60;
        }
      }
    }
    h0 = m0 = 0;
  }
  return -1;
}

}  // namespace detops
