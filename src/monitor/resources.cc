// Resource samples from /proc. Every read is best effort: a file that is
// missing (not Linux, a sandbox without /proc) leaves its fields at 0.

#include "monitor/resources.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace detops {
namespace {

// The numbers of a "Name:   value [kB]" file (/proc/self/status,
// /proc/meminfo) whose names are asked for, in the unit printed.
std::map<std::string, int64_t> ReadFields(const char* path, std::map<std::string, int64_t> wanted) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto it = wanted.find(line.substr(0, colon));
    if (it == wanted.end()) continue;
    std::istringstream value(line.substr(colon + 1));
    value >> it->second;
  }
  return wanted;
}

// Entries of /proc/self/fd but the one this listing holds open.
int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  const std::string own = std::to_string(dirfd(dir));
  int count = 0;
  while (const dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name != "." && name != ".." && name != own) ++count;
  }
  closedir(dir);
  return count;
}

double CpuSeconds() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Reads a JSON number field; anything else (missing, a string) gives 0, as
// an unreadable /proc field would.
template <typename T>
T NumberOr0(const Json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<T>() : T{0};
}

}  // namespace

ResourceSample SampleResources(const ResourceSample* previous) {
  ResourceSample s;
  s.at_ms = NowMs();
  s.cpu_seconds = CpuSeconds();
  if (previous != nullptr && s.at_ms > previous->at_ms) {
    const double wall_s = (s.at_ms - previous->at_ms) / 1000.0;
    s.cpu_percent = std::max(0.0, 100 * (s.cpu_seconds - previous->cpu_seconds) / wall_s);
  }
  const auto status = ReadFields("/proc/self/status", {{"VmRSS", 0}, {"VmHWM", 0}, {"Threads", 0}});
  s.rss_bytes = status.at("VmRSS") * 1024;
  s.peak_rss_bytes = status.at("VmHWM") * 1024;
  s.threads = static_cast<int>(status.at("Threads"));
  s.open_fds = CountOpenFds();
  std::ifstream("/proc/loadavg") >> s.load1 >> s.load5;
  const auto mem = ReadFields("/proc/meminfo", {{"MemTotal", 0}, {"MemAvailable", 0}});
  s.mem_total_bytes = mem.at("MemTotal") * 1024;
  s.mem_available_bytes = mem.at("MemAvailable") * 1024;
  s.cores = static_cast<int>(std::max(0L, sysconf(_SC_NPROCESSORS_ONLN)));
  return s;
}

Json ResourceSampleToJson(const ResourceSample& s) {
  return {{"at_ms", s.at_ms},
          {"cpu_seconds", s.cpu_seconds},
          {"cpu_percent", s.cpu_percent},
          {"rss_bytes", s.rss_bytes},
          {"peak_rss_bytes", s.peak_rss_bytes},
          {"threads", s.threads},
          {"open_fds", s.open_fds},
          {"load1", s.load1},
          {"load5", s.load5},
          {"mem_total_bytes", s.mem_total_bytes},
          {"mem_available_bytes", s.mem_available_bytes},
          {"cores", s.cores}};
}

ResourceSample ResourceSampleFromJson(const Json& j) {
  ResourceSample s;
  s.at_ms = NumberOr0<int64_t>(j, "at_ms");
  s.cpu_seconds = NumberOr0<double>(j, "cpu_seconds");
  s.cpu_percent = NumberOr0<double>(j, "cpu_percent");
  s.rss_bytes = NumberOr0<int64_t>(j, "rss_bytes");
  s.peak_rss_bytes = NumberOr0<int64_t>(j, "peak_rss_bytes");
  s.threads = NumberOr0<int>(j, "threads");
  s.open_fds = NumberOr0<int>(j, "open_fds");
  s.load1 = NumberOr0<double>(j, "load1");
  s.load5 = NumberOr0<double>(j, "load5");
  s.mem_total_bytes = NumberOr0<int64_t>(j, "mem_total_bytes");
  s.mem_available_bytes = NumberOr0<int64_t>(j, "mem_available_bytes");
  s.cores = NumberOr0<int>(j, "cores");
  return s;
}

}  // namespace detops
