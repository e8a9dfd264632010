#include "orchestrate/cron.h"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

namespace detops {
namespace {

// Seconds since the epoch of a UTC date and time.
int64_t At(int year, int month, int day, int hour = 0, int minute = 0, int second = 0) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

CronSchedule Cron(const std::string& expr) {
  auto r = CronSchedule::Parse(expr);
  EXPECT_TRUE(r.ok()) << expr << ": " << r.status().ToString();
  return r.ok() ? *r : CronSchedule();
}

std::string ParseError(const std::string& expr) {
  auto r = CronSchedule::Parse(expr);
  EXPECT_FALSE(r.ok()) << expr << " parsed";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  return r.status().message();
}

// 2024-01-01 was a Monday.
TEST(CronTest, EachFieldForm) {
  CronSchedule s = Cron("*/15 9-17 1,15 * *");
  EXPECT_TRUE(s.Matches(At(2024, 1, 1, 9, 0)));
  EXPECT_TRUE(s.Matches(At(2024, 1, 15, 17, 45)));
  EXPECT_TRUE(s.Matches(At(2024, 1, 15, 17, 45, 59)));  // any second of the minute
  EXPECT_FALSE(s.Matches(At(2024, 1, 15, 17, 46)));
  EXPECT_FALSE(s.Matches(At(2024, 1, 15, 18, 0)));
  EXPECT_FALSE(s.Matches(At(2024, 1, 15, 8, 45)));
  EXPECT_FALSE(s.Matches(At(2024, 1, 2, 9, 0)));

  CronSchedule ranged = Cron("10-30/10 0 * * *");  // 10, 20, 30
  EXPECT_TRUE(ranged.Matches(At(2024, 1, 1, 0, 10)));
  EXPECT_TRUE(ranged.Matches(At(2024, 1, 1, 0, 20)));
  EXPECT_TRUE(ranged.Matches(At(2024, 1, 1, 0, 30)));
  EXPECT_FALSE(ranged.Matches(At(2024, 1, 1, 0, 40)));
  EXPECT_FALSE(ranged.Matches(At(2024, 1, 1, 0, 0)));

  CronSchedule from = Cron("50/5 0 * * *");  // 50, 55
  EXPECT_TRUE(from.Matches(At(2024, 1, 1, 0, 55)));
  EXPECT_FALSE(from.Matches(At(2024, 1, 1, 0, 0)));
  EXPECT_FALSE(from.Matches(At(2024, 1, 1, 0, 45)));

  CronSchedule list = Cron("0 0,12,23 * * *");
  EXPECT_TRUE(list.Matches(At(2024, 1, 1, 23, 0)));
  EXPECT_FALSE(list.Matches(At(2024, 1, 1, 13, 0)));

  CronSchedule every = Cron("* * * * *");
  EXPECT_TRUE(every.Matches(At(1999, 12, 31, 23, 59, 30)));
  EXPECT_EQ(every.expr(), "* * * * *");
}

TEST(CronTest, MonthAndDayNamesCaseInsensitive) {
  CronSchedule s = Cron("0 6 * JAN-mar,Dec Mon-FRI");
  EXPECT_TRUE(s.Matches(At(2024, 1, 1, 6, 0)));   // Monday in January
  EXPECT_TRUE(s.Matches(At(2024, 12, 6, 6, 0)));  // Friday in December
  EXPECT_FALSE(s.Matches(At(2024, 1, 6, 6, 0)));  // Saturday
  EXPECT_FALSE(s.Matches(At(2024, 4, 1, 6, 0)));  // Monday in April
  CronSchedule single = Cron("0 0 * feb sun");
  EXPECT_TRUE(single.Matches(At(2024, 2, 4)));  // a Sunday
  EXPECT_FALSE(single.Matches(At(2024, 2, 5)));
}

TEST(CronTest, SevenIsSunday) {
  const int64_t sunday = At(2024, 1, 7, 0, 0);
  const int64_t saturday = At(2024, 1, 6, 0, 0);
  const int64_t monday = At(2024, 1, 8, 0, 0);
  for (const char* expr :
       {"0 0 * * 0", "0 0 * * 7", "0 0 * * 5-7", "0 0 * * fri-sun", "0 0 * * 6,7"}) {
    EXPECT_TRUE(Cron(expr).Matches(sunday)) << expr;
    EXPECT_FALSE(Cron(expr).Matches(monday)) << expr;
  }
  EXPECT_TRUE(Cron("0 0 * * 5-7").Matches(saturday));
  EXPECT_FALSE(Cron("0 0 * * 7").Matches(saturday));
  // `*` and `A/N` do not count Sunday twice.
  EXPECT_TRUE(Cron("0 0 * * */2").Matches(sunday));
  EXPECT_FALSE(Cron("0 0 * * 1/2").Matches(sunday));  // 1, 3, 5
  EXPECT_TRUE(Cron("0 0 * * 1/2").Matches(monday));
}

TEST(CronTest, RestrictedDayFieldsMatchEither) {
  // The 13th or any Friday.
  CronSchedule s = Cron("0 0 13 * fri");
  EXPECT_TRUE(s.Matches(At(2024, 1, 5)));    // Friday the 5th
  EXPECT_TRUE(s.Matches(At(2024, 1, 13)));   // Saturday the 13th
  EXPECT_FALSE(s.Matches(At(2024, 1, 14)));  // Sunday the 14th
  EXPECT_EQ(s.Next(At(2024, 1, 5)), At(2024, 1, 12));
  EXPECT_EQ(s.Next(At(2024, 1, 12)), At(2024, 1, 13));
  // With one day field `*`, only the other restricts.
  EXPECT_EQ(Cron("0 0 13 * *").Next(At(2024, 1, 5)), At(2024, 1, 13));
  EXPECT_EQ(Cron("0 0 * * fri").Next(At(2024, 1, 5)), At(2024, 1, 12));
  // A field starting with `*` counts as unrestricted (Vixie cron): odd days
  // that are Mondays.
  CronSchedule star_step = Cron("0 0 */2 * mon");
  EXPECT_TRUE(star_step.Matches(At(2024, 1, 1)));   // Monday the 1st
  EXPECT_FALSE(star_step.Matches(At(2024, 1, 8)));  // Monday the 8th
  EXPECT_FALSE(star_step.Matches(At(2024, 1, 3)));  // Wednesday the 3rd
  // A month restriction applies to both.
  CronSchedule in_march = Cron("0 0 1 mar mon");
  EXPECT_FALSE(in_march.Matches(At(2024, 1, 1)));
  EXPECT_TRUE(in_march.Matches(At(2024, 3, 1)));  // a Friday, but the 1st
  EXPECT_TRUE(in_march.Matches(At(2024, 3, 4)));  // a Monday
}

TEST(CronTest, Shorthands) {
  const int64_t t = At(2024, 1, 10, 10, 30);  // a Wednesday
  EXPECT_EQ(Cron("@hourly").Next(t), At(2024, 1, 10, 11, 0));
  EXPECT_EQ(Cron("@daily").Next(t), At(2024, 1, 11));
  EXPECT_EQ(Cron("@midnight").Next(t), At(2024, 1, 11));
  EXPECT_EQ(Cron("@weekly").Next(t), At(2024, 1, 14));  // Sunday
  EXPECT_EQ(Cron("@monthly").Next(t), At(2024, 2, 1));
  EXPECT_EQ(Cron("@yearly").Next(t), At(2025, 1, 1));
  EXPECT_EQ(Cron("@annually").Next(t), At(2025, 1, 1));
  EXPECT_EQ(Cron(" @DAILY ").Next(t), At(2024, 1, 11));
  EXPECT_EQ(Cron("@daily").expr(), "@daily");
}

TEST(CronTest, NextIsStrictlyAfter) {
  CronSchedule every = Cron("* * * * *");
  EXPECT_EQ(every.Next(At(2024, 1, 1, 10, 0)), At(2024, 1, 1, 10, 1));
  EXPECT_EQ(every.Next(At(2024, 1, 1, 10, 0, 59)), At(2024, 1, 1, 10, 1));
  CronSchedule at_ten = Cron("0 10 * * *");
  EXPECT_EQ(at_ten.Next(At(2024, 1, 1, 9, 59, 59)), At(2024, 1, 1, 10, 0));
  EXPECT_EQ(at_ten.Next(At(2024, 1, 1, 10, 0)), At(2024, 1, 2, 10, 0));
  // Later minutes of the same hour, then the next matching hour.
  CronSchedule two = Cron("15,45 8,20 * * *");
  EXPECT_EQ(two.Next(At(2024, 1, 1, 8, 20)), At(2024, 1, 1, 8, 45));
  EXPECT_EQ(two.Next(At(2024, 1, 1, 8, 45)), At(2024, 1, 1, 20, 15));
  EXPECT_EQ(two.Next(At(2024, 1, 1, 20, 45)), At(2024, 1, 2, 8, 15));
  // Before the epoch.
  EXPECT_EQ(Cron("0 0 1 1 *").Next(-1), 0);
}

TEST(CronTest, NextAcrossMonthAndYearEnds) {
  EXPECT_EQ(Cron("0 0 1 * *").Next(At(2024, 1, 31, 23, 59)), At(2024, 2, 1));
  EXPECT_EQ(Cron("0 0 1 1 *").Next(At(2024, 12, 31, 23, 59, 59)), At(2025, 1, 1));
  EXPECT_EQ(Cron("30 23 31 12 *").Next(At(2024, 12, 31, 23, 30)), At(2025, 12, 31, 23, 30));
  // The 31st skips the months without one.
  EXPECT_EQ(Cron("0 0 31 * *").Next(At(2024, 3, 31)), At(2024, 5, 31));
  EXPECT_EQ(Cron("0 12 30 * *").Next(At(2024, 1, 30, 12, 0)), At(2024, 3, 30, 12, 0));
}

TEST(CronTest, LeapDays) {
  CronSchedule leap = Cron("0 0 29 2 *");
  EXPECT_EQ(leap.Next(At(2023, 1, 1)), At(2024, 2, 29));
  EXPECT_EQ(leap.Next(At(2024, 2, 29)), At(2028, 2, 29));
  EXPECT_EQ(leap.Next(At(2024, 3, 1)), At(2028, 2, 29));
  EXPECT_TRUE(leap.Matches(At(2000, 2, 29)));  // 2000 is a leap year
  EXPECT_EQ(Cron("0 0 28 feb *").Next(At(2024, 2, 28)), At(2025, 2, 28));
  EXPECT_EQ(Cron("0 0 1 3 *").Next(At(2024, 2, 28, 12, 0)), At(2024, 3, 1));
}

TEST(CronTest, ImpossibleSchedulesReturnMinusOne) {
  EXPECT_EQ(Cron("0 0 31 2 *").Next(At(2024, 1, 1)), -1);
  EXPECT_EQ(Cron("0 0 30 feb *").Next(At(2024, 1, 1)), -1);
  EXPECT_EQ(Cron("0 0 31 4,6,9,11 *").Next(At(2024, 1, 1)), -1);
  // Either day field may match: the Mondays of February.
  EXPECT_EQ(Cron("0 0 31 2 mon").Next(At(2024, 1, 1)), At(2024, 2, 5));
}

TEST(CronTest, ErrorsNameTheFieldAndToken) {
  EXPECT_NE(ParseError("61 * * * *").find("minute: '61' is out of range 0-59"), std::string::npos);
  EXPECT_NE(ParseError("0 24 * * *").find("hour: '24' is out of range 0-23"), std::string::npos);
  EXPECT_NE(ParseError("0 0 0 * *").find("day-of-month: '0' is out of range 1-31"),
            std::string::npos);
  EXPECT_NE(ParseError("0 0 32 * *").find("day-of-month: '32'"), std::string::npos);
  EXPECT_NE(ParseError("0 0 * 13 *").find("month: '13' is out of range 1-12"), std::string::npos);
  EXPECT_NE(ParseError("0 0 * * 8").find("day-of-week: '8' is out of range 0-7"),
            std::string::npos);
  EXPECT_NE(ParseError("0 0 * * 1,99999999").find("day-of-week: '99999999' is out of range"),
            std::string::npos);
  EXPECT_NE(ParseError("0 0 * foo *").find("month: 'foo'"), std::string::npos);
  EXPECT_NE(ParseError("0 0 * * funday").find("day-of-week: 'funday'"), std::string::npos);
  EXPECT_NE(ParseError("jan * * * *").find("minute: 'jan' is not a number"), std::string::npos);
  EXPECT_NE(ParseError("0 0 * mon *").find("month: 'mon'"), std::string::npos);
  EXPECT_NE(ParseError("*/0 * * * *").find("minute: '*/0'"), std::string::npos);
  EXPECT_NE(ParseError("*/x * * * *").find("minute: '*/x'"), std::string::npos);
  EXPECT_NE(ParseError("0 5-1 * * *").find("hour: '5-1'"), std::string::npos);
  EXPECT_NE(ParseError("1,,2 * * * *").find("minute: '1,,2' has an empty list item"),
            std::string::npos);
  EXPECT_NE(ParseError("0 0 * * mon-").find("day-of-week: 'mon-'"), std::string::npos);
  EXPECT_NE(ParseError("-5 * * * *").find("minute: '-5'"), std::string::npos);
  EXPECT_NE(ParseError("1, * * * *").find("minute: '1,'"), std::string::npos);
  EXPECT_NE(ParseError("* * * *").find("expected 5 fields"), std::string::npos);
  EXPECT_NE(ParseError("* * * * * *").find("got 6"), std::string::npos);
  EXPECT_NE(ParseError("").find("got 0"), std::string::npos);
  EXPECT_NE(ParseError("@sometimes").find("'@sometimes'"), std::string::npos);
  // The expression itself is named too.
  EXPECT_NE(ParseError("61 * * * *").find("cron '61 * * * *'"), std::string::npos);
}

// Next agrees with a minute-by-minute scan using Matches.
TEST(CronTest, NextAgreesWithMatches) {
  const char* exprs[] = {"*/7 */5 * * *",   "0 0 13 * fri",   "5 4 * * sun",     "0 22 * * 1-5",
                         "23 0-20/2 * * *", "0 0,12 1 */2 *", "59 23 28-31 * *", "0 0 */2 * mon"};
  for (const char* expr : exprs) {
    CronSchedule s = Cron(expr);
    int64_t t = At(2023, 12, 20, 7, 13, 21);
    for (int step = 0; step < 20; ++step) {
      int64_t expected = (t / 60 + 1) * 60;
      while (!s.Matches(expected)) expected += 60;
      const int64_t next = s.Next(t);
      ASSERT_EQ(next, expected) << expr << " after " << t;
      t = next + (step % 3 == 0 ? 0 : 29);
    }
  }
}

}  // namespace
}  // namespace detops
