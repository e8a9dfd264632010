// Resource samples of this test process: plausible values, CPU and file
// descriptors that follow what the process does, and the JSON round trip.

#include "monitor/resources.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <vector>

namespace detops {
namespace {

TEST(ResourcesTest, SampleOfThisProcessIsPlausible) {
  const ResourceSample s = SampleResources();
  EXPECT_GT(s.at_ms, 1'600'000'000'000);  // after 2020
  EXPECT_GT(s.cpu_seconds, 0);
  EXPECT_EQ(s.cpu_percent, 0);  // no previous sample
  EXPECT_GT(s.rss_bytes, 0);
  EXPECT_GE(s.peak_rss_bytes, s.rss_bytes);
  EXPECT_GE(s.threads, 1);
  EXPECT_GE(s.open_fds, 1);  // stdout at least
  EXPECT_GE(s.load1, 0);
  EXPECT_GE(s.load5, 0);
  EXPECT_GT(s.mem_total_bytes, 0);
  EXPECT_GT(s.mem_available_bytes, 0);
  EXPECT_LE(s.mem_available_bytes, s.mem_total_bytes);
  EXPECT_GE(s.cores, 1);
}

TEST(ResourcesTest, CpuPercentFollowsBusyTime) {
  const ResourceSample first = SampleResources();
  // Burn about 200 ms of CPU on this thread.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  volatile double sink = 0;
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 1000; ++i) sink = sink + std::sqrt(static_cast<double>(i));
  }
  const ResourceSample second = SampleResources(&first);
  EXPECT_GT(second.cpu_seconds, first.cpu_seconds);
  // One busy thread is 100 %; a loaded machine may give it less of a core.
  EXPECT_GT(second.cpu_percent, 20);
  EXPECT_LT(second.cpu_percent, 100.0 * second.cores + 10);
}

TEST(ResourcesTest, OpenFileDescriptorsAreCounted) {
  const int before = SampleResources().open_fds;
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) fds.push_back(open("/dev/null", O_RDONLY));
  const int during = SampleResources().open_fds;
  for (int fd : fds) close(fd);
  EXPECT_EQ(during, before + 5);
  EXPECT_EQ(SampleResources().open_fds, before);
}

TEST(ResourcesTest, JsonRoundTrip) {
  ResourceSample s;
  s.at_ms = 1'700'000'000'123;
  s.cpu_seconds = 12.5;
  s.cpu_percent = 87.25;
  s.rss_bytes = int64_t{3} << 33;  // beyond 32 bits
  s.peak_rss_bytes = int64_t{7} << 32;
  s.threads = 17;
  s.open_fds = 42;
  s.load1 = 1.5;
  s.load5 = 0.75;
  s.mem_total_bytes = int64_t{64} << 30;
  s.mem_available_bytes = int64_t{21} << 30;
  s.cores = 16;
  const Json j = ResourceSampleToJson(s);
  const ResourceSample back = ResourceSampleFromJson(Json::parse(j.dump()));
  EXPECT_EQ(ResourceSampleToJson(back), j);
  EXPECT_EQ(back.rss_bytes, s.rss_bytes);
  EXPECT_EQ(back.cpu_percent, s.cpu_percent);
  EXPECT_EQ(back.cores, 16);
}

TEST(ResourcesTest, JsonWithMissingOrWrongFieldsGivesZeros) {
  const ResourceSample s =
      ResourceSampleFromJson(Json::parse(R"({"threads": "many", "cores": 4})"));
  EXPECT_EQ(s.threads, 0);
  EXPECT_EQ(s.cores, 4);
  EXPECT_EQ(s.rss_bytes, 0);
  EXPECT_EQ(ResourceSampleFromJson(Json::array()).cores, 0);
}

}  // namespace
}  // namespace detops
