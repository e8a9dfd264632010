#pragma once
// Cron schedules for the schedule trigger: the five standard fields
// (minute hour day-of-month month day-of-week), evaluated in UTC.
// Each field: `*`, a number, a range `a-b`, a list `a,b,c`, a step `*/n` or
// `a-b/n` (also `a/n`: a to the field's end); month names jan..dec and day
// names sun..sat (case-insensitive, also in ranges: mon-fri, fri-sun);
// day-of-week 0 and 7 are Sunday. As in Vixie cron, when both day fields
// are restricted a day matches if either does; a day field that starts
// with `*` (`*/2` too) counts as unrestricted, so then both must match.
// Shorthands: @hourly, @daily (= @midnight), @weekly, @monthly, @yearly
// (= @annually).

#include <cstdint>
#include <string>

#include "core/core.h"

namespace detops {

class CronSchedule {
 public:
  // InvalidInput naming the field and the token at fault:
  //   "cron '61 * * * *': minute: '61' is out of range 0-59".
  static Result<CronSchedule> Parse(const std::string& expr);
  // The first matching minute strictly after `after_unix_s` (seconds since
  // the epoch, UTC), as seconds since the epoch; -1 when none within 5 years
  // (e.g. "0 0 31 2 *").
  int64_t Next(int64_t after_unix_s) const;
  // Whether the minute containing `unix_s` matches.
  bool Matches(int64_t unix_s) const;
  const std::string& expr() const { return expr_; }

 private:
  bool DayMatches(int mday, int month, int wday) const;  // month 1-12, wday 0-6

  std::string expr_;
  uint64_t minutes_ = 0;  // bit i: minute i (0-59)
  uint32_t hours_ = 0;    // 0-23
  uint32_t days_ = 0;     // 1-31
  uint16_t months_ = 0;   // 1-12
  uint8_t weekdays_ = 0;  // 0-6, Sunday 0
  bool days_star_ = true, weekdays_star_ = true;
};

}  // namespace detops
