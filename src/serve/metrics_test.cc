#include "serve/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

namespace detops {
namespace {

TEST(MetricsTest, CounterWithLabelsRendersSortedChildren) {
  MetricsRegistry reg;
  auto family = reg.AddCounter("detops_http_requests_total", "HTTP requests by route and status",
                               {"route", "status"});
  ASSERT_TRUE(family.ok()) << family.status().ToString();
  Counter& ok = (*family)->With({"/v1/predict", "200"});
  ok.Inc();
  ok.Inc(2);
  (*family)->With({"/v1/predict", "400"}).Inc();
  (*family)->With({"/healthz", "200"}).Inc(0.5);
  EXPECT_EQ(&ok, &(*family)->With({"/v1/predict", "200"}));  // cached
  EXPECT_EQ(ok.value(), 3);
  EXPECT_EQ(reg.Render(),
            "# HELP detops_http_requests_total HTTP requests by route and status\n"
            "# TYPE detops_http_requests_total counter\n"
            "detops_http_requests_total{route=\"/healthz\",status=\"200\"} 0.5\n"
            "detops_http_requests_total{route=\"/v1/predict\",status=\"200\"} 3\n"
            "detops_http_requests_total{route=\"/v1/predict\",status=\"400\"} 1\n");
}

TEST(MetricsTest, UnlabelledFamiliesRenderZeroAtOnceAndLabelledOnesOnlyWithChildren) {
  MetricsRegistry reg;
  ASSERT_TRUE(reg.AddCounter("a_total", "A.").ok());
  ASSERT_TRUE(reg.AddGauge("b", "B.", {"model"}).ok());  // no child yet: left out
  ASSERT_TRUE(reg.AddCounter("c_total", "").ok());       // no help: no HELP line
  EXPECT_EQ(reg.Render(),
            "# HELP a_total A.\n"
            "# TYPE a_total counter\n"
            "a_total 0\n"
            "# TYPE c_total counter\n"
            "c_total 0\n");
}

TEST(MetricsTest, Gauge) {
  MetricsRegistry reg;
  auto family = reg.AddGauge("detops_requests_in_flight", "Requests being served");
  ASSERT_TRUE(family.ok());
  Gauge& g = (*family)->With({});
  g.Set(5);
  g.Inc();
  g.Dec(3);
  g.Dec(0.25);
  EXPECT_EQ(g.value(), 2.75);
  EXPECT_EQ(reg.Render(),
            "# HELP detops_requests_in_flight Requests being served\n"
            "# TYPE detops_requests_in_flight gauge\n"
            "detops_requests_in_flight 2.75\n");
  g.Set(-1e20);
  EXPECT_EQ(reg.Render(),
            "# HELP detops_requests_in_flight Requests being served\n"
            "# TYPE detops_requests_in_flight gauge\n"
            "detops_requests_in_flight -1e+20\n");
}

TEST(MetricsTest, CallbackGaugeIsReadAtRenderTime) {
  MetricsRegistry reg;
  auto family = reg.AddGauge("detops_model_version", "Version of the serving model", {"model"});
  ASSERT_TRUE(family.ok());
  int version = 3;
  (*family)->SetCallback({"cars"}, [&version] { return version; });
  (*family)->With({"roads"}).Set(7);
  const std::string head =
      "# HELP detops_model_version Version of the serving model\n"
      "# TYPE detops_model_version gauge\n";
  EXPECT_EQ(reg.Render(), head +
                              "detops_model_version{model=\"cars\"} 3\n"
                              "detops_model_version{model=\"roads\"} 7\n");
  version = 4;
  EXPECT_EQ(reg.Render(), head +
                              "detops_model_version{model=\"cars\"} 4\n"
                              "detops_model_version{model=\"roads\"} 7\n");
  // A throwing callback renders NaN; removing the callback falls back to Set.
  (*family)->SetCallback({"cars"}, []() -> double { throw std::runtime_error("gone"); });
  EXPECT_NE(reg.Render().find("detops_model_version{model=\"cars\"} NaN\n"), std::string::npos);
  (*family)->SetCallback({"cars"}, nullptr);
  (*family)->With({"cars"}).Set(1);
  EXPECT_EQ(reg.Render(), head +
                              "detops_model_version{model=\"cars\"} 1\n"
                              "detops_model_version{model=\"roads\"} 7\n");
}

TEST(MetricsTest, HistogramWithLabels) {
  MetricsRegistry reg;
  auto family = reg.AddHistogram("detops_inference_seconds", "Model inference time", {"model"},
                                 {0.005, 0.01, 0.1, 1});
  ASSERT_TRUE(family.ok()) << family.status().ToString();
  Histogram& cars = (*family)->With({"cars"});
  for (double v : {0.001, 0.005, 0.012, 0.05, 0.5, 3.0}) cars.Observe(v);
  (*family)->With({"bikes"}).Observe(0.25);
  EXPECT_EQ(cars.count(), 6u);
  EXPECT_EQ(cars.CumulativeCounts(), (std::vector<uint64_t>{2, 2, 4, 5, 6}));
  EXPECT_EQ(reg.Render(),
            "# HELP detops_inference_seconds Model inference time\n"
            "# TYPE detops_inference_seconds histogram\n"
            "detops_inference_seconds_bucket{model=\"bikes\",le=\"0.005\"} 0\n"
            "detops_inference_seconds_bucket{model=\"bikes\",le=\"0.01\"} 0\n"
            "detops_inference_seconds_bucket{model=\"bikes\",le=\"0.1\"} 0\n"
            "detops_inference_seconds_bucket{model=\"bikes\",le=\"1\"} 1\n"
            "detops_inference_seconds_bucket{model=\"bikes\",le=\"+Inf\"} 1\n"
            "detops_inference_seconds_sum{model=\"bikes\"} 0.25\n"
            "detops_inference_seconds_count{model=\"bikes\"} 1\n"
            "detops_inference_seconds_bucket{model=\"cars\",le=\"0.005\"} 2\n"
            "detops_inference_seconds_bucket{model=\"cars\",le=\"0.01\"} 2\n"
            "detops_inference_seconds_bucket{model=\"cars\",le=\"0.1\"} 4\n"
            "detops_inference_seconds_bucket{model=\"cars\",le=\"1\"} 5\n"
            "detops_inference_seconds_bucket{model=\"cars\",le=\"+Inf\"} 6\n"
            "detops_inference_seconds_sum{model=\"cars\"} 3.568\n"
            "detops_inference_seconds_count{model=\"cars\"} 6\n");
}

TEST(MetricsTest, HistogramWithoutLabelsAndSpecialValues) {
  MetricsRegistry reg;
  // A trailing +Inf bound is the implicit one.
  auto family = reg.AddHistogram("detops_batch_size", "Requests per batch", {},
                                 {1, 2, 4, std::numeric_limits<double>::infinity()});
  ASSERT_TRUE(family.ok());
  EXPECT_EQ((*family)->buckets(), (std::vector<double>{1, 2, 4}));
  Histogram& h = (*family)->With({});
  h.Observe(2);
  h.Observe(std::nan(""));
  EXPECT_EQ(reg.Render(),
            "# HELP detops_batch_size Requests per batch\n"
            "# TYPE detops_batch_size histogram\n"
            "detops_batch_size_bucket{le=\"1\"} 0\n"
            "detops_batch_size_bucket{le=\"2\"} 1\n"
            "detops_batch_size_bucket{le=\"4\"} 1\n"
            "detops_batch_size_bucket{le=\"+Inf\"} 2\n"
            "detops_batch_size_sum NaN\n"
            "detops_batch_size_count 2\n");
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry reg;
  auto family = reg.AddCounter("x_total", "Help with \\ and\nnewline and \"quotes\"", {"path"});
  ASSERT_TRUE(family.ok());
  (*family)->With({"a\\b \"c\"\nd"}).Inc();
  EXPECT_EQ(reg.Render(),
            "# HELP x_total Help with \\\\ and\\nnewline and \"quotes\"\n"
            "# TYPE x_total counter\n"
            "x_total{path=\"a\\\\b \\\"c\\\"\\nd\"} 1\n");
}

TEST(MetricsTest, FamiliesRenderInRegistrationOrder) {
  MetricsRegistry reg;
  ASSERT_TRUE(reg.AddGauge("zeta", "Z.").ok());
  ASSERT_TRUE(reg.AddCounter("alpha_total", "A.").ok());
  std::string text = reg.Render();
  EXPECT_LT(text.find("zeta 0"), text.find("alpha_total 0"));
}

TEST(MetricsTest, ConcurrentIncrementsSumExactly) {
  MetricsRegistry reg;
  auto counters = reg.AddCounter("hits_total", "Hits.", {"worker"});
  auto histograms = reg.AddHistogram("lat_seconds", "Latency.", {}, LatencyBuckets());
  ASSERT_TRUE(counters.ok() && histograms.ok());
  constexpr int kThreads = 8, kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter& shared = (*counters)->With({"all"});  // same child from every thread
      Counter& own = (*counters)->With({"w" + std::to_string(t)});
      Histogram& h = (*histograms)->With({});
      for (int i = 0; i < kPerThread; ++i) {
        shared.Inc();
        own.Inc();
        h.Observe(0.003);
        if (i % 1000 == 0) (void)reg.Render();  // rendering races with updates safely
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ((*counters)->With({"all"}).value(), kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ((*counters)->With({"w" + std::to_string(t)}).value(), kPerThread);
  }
  Histogram& h = (*histograms)->With({});
  EXPECT_EQ(h.count(), uint64_t{kThreads * kPerThread});
  EXPECT_EQ(h.CumulativeCounts()[1], 0u);                               // le=0.002
  EXPECT_EQ(h.CumulativeCounts()[2], uint64_t{kThreads * kPerThread});  // le=0.005
  EXPECT_NEAR(h.sum(), 0.003 * kThreads * kPerThread, 1e-6);
  EXPECT_NE(reg.Render().find("hits_total{worker=\"all\"} 160000\n"), std::string::npos);
}

TEST(MetricsTest, InvalidNamesAreRejected) {
  MetricsRegistry reg;
  for (const char* name : {"", "1abc", "a-b", "a b", "é"}) {
    auto r = reg.AddCounter(name, "");
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput) << name;
  }
  for (const char* label : {"", "__reserved", "a:b", "9x", "a-b"}) {
    auto r = reg.AddGauge("g", "", {label});
    ASSERT_FALSE(r.ok()) << label;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput) << label;
  }
  EXPECT_EQ(reg.AddGauge("g", "", {"a", "a"}).status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(reg.AddHistogram("h", "", {"le"}, {1}).status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(reg.AddHistogram("h", "", {}, {2, 1}).status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(reg.AddHistogram("h", "", {}, {1, 1}).status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(reg.AddHistogram("h", "", {}, {std::nan("")}).status().code(),
            StatusCode::kInvalidInput);
  EXPECT_TRUE(reg.AddCounter("ns:sub_total", "", {"_ok", "Also9"}).ok());
  EXPECT_TRUE(IsValidMetricName(":a_b:9"));
  EXPECT_FALSE(IsValidLabelName("__name__"));
}

TEST(MetricsTest, ReRegistrationReturnsTheSameFamilyOrConflicts) {
  MetricsRegistry reg;
  auto a = reg.AddCounter("req_total", "Requests.", {"route"});
  auto b = reg.AddCounter("req_total", "Other help is ignored.", {"route"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ((*b)->help(), "Requests.");
  EXPECT_EQ(reg.AddCounter("req_total", "", {"code"}).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(reg.AddGauge("req_total", "", {"route"}).status().code(), StatusCode::kAlreadyExists);

  auto h1 = reg.AddHistogram("lat_seconds", "", {}, {1, 2});
  auto h2 = reg.AddHistogram("lat_seconds", "", {}, {1, 2});
  ASSERT_TRUE(h1.ok() && h2.ok());
  EXPECT_EQ(*h1, *h2);
  EXPECT_EQ(reg.AddHistogram("lat_seconds", "", {}, {1, 3}).status().code(),
            StatusCode::kAlreadyExists);
  // Names a histogram renders are taken, both ways round.
  EXPECT_EQ(reg.AddCounter("lat_seconds_count", "").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(reg.AddHistogram("req", "", {}, {1}).status().code(), StatusCode::kOk);
  EXPECT_EQ(reg.AddGauge("req_sum", "").status().code(), StatusCode::kAlreadyExists);
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_EQ(BatchSizeBuckets(), (std::vector<double>{1, 2, 4, 8, 16, 32, 64}));
  EXPECT_EQ(BatchSizeBuckets(8), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(BatchSizeBuckets(5), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(BatchSizeBuckets(1), (std::vector<double>{1}));
  std::vector<double> latency = LatencyBuckets();
  EXPECT_EQ(latency.front(), 0.001);
  EXPECT_EQ(latency.back(), 10);
  EXPECT_TRUE(std::is_sorted(latency.begin(), latency.end()));
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  MetricsRegistry reg;
  EXPECT_TRUE(reg.AddHistogram("l_seconds", "", {}, LatencyBuckets()).ok());
  EXPECT_NE(reg.Render().find("l_seconds_bucket{le=\"0.002\"} 0\n"), std::string::npos);
}

}  // namespace
}  // namespace detops
