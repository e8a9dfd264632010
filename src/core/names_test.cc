#include "core/names.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

namespace detops {
namespace {

TEST(Names, OneRuleForTheCheckAndTheRoutePattern) {
  const std::regex route{std::string(kNamePattern)};
  for (const std::string& good :
       std::vector<std::string>{"cars", "Cars_2", "road-v1.2", "7", std::string(64, 'a')}) {
    EXPECT_TRUE(CheckName("model", good).ok()) << good;
    EXPECT_TRUE(std::regex_match(good, route)) << good;
  }
  for (const std::string& bad : std::vector<std::string>{"", "_cars", ".cars", "-cars", "ca rs",
                                                         "cars/x", "çars", std::string(65, 'a')}) {
    Status s = CheckName("dataset", bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidInput) << bad;
    EXPECT_NE(s.message().find("dataset name '" + bad + "'"), std::string::npos);
    EXPECT_FALSE(std::regex_match(bad, route)) << bad;
  }
}

}  // namespace
}  // namespace detops
