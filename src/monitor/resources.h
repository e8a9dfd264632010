#pragma once
// Resource utilisation of this process and its host, read from /proc (Linux):
// what the server samples for /metrics and for the service samples the
// monitor scores (the hackathon case study's "efficiency and resource
// utilization").

#include <cstdint>

#include "core/core.h"

namespace detops {

struct ResourceSample {
  int64_t at_ms = 0;            // Unix epoch milliseconds
  double cpu_seconds = 0;       // user + system CPU time of the process so far
  double cpu_percent = 0;       // since the previous sample (100 = one core busy); 0 at first
  int64_t rss_bytes = 0;        // resident set size
  int64_t peak_rss_bytes = 0;   // VmHWM
  int threads = 0;              // threads of the process
  int open_fds = 0;             // open file descriptors (connections included)
  double load1 = 0, load5 = 0;  // host load averages
  int64_t mem_total_bytes = 0;  // host
  int64_t mem_available_bytes = 0;
  int cores = 0;  // online CPUs
};

// Samples resources; cpu_percent is measured against `previous` (pass
// nullptr for the first sample). Fields that cannot be read stay 0.
ResourceSample SampleResources(const ResourceSample* previous = nullptr);

// {"at_ms", "cpu_seconds", "cpu_percent", "rss_bytes", "peak_rss_bytes",
//  "threads", "open_fds", "load1", "load5", "mem_total_bytes",
//  "mem_available_bytes", "cores"}
Json ResourceSampleToJson(const ResourceSample& s);
ResourceSample ResourceSampleFromJson(const Json& j);

}  // namespace detops
