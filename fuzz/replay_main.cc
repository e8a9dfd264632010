// The fuzz targets' main() in the normal (GCC) build: replays every file of
// the folders given (the seed corpus and the regression inputs), then feeds
// the target seeded, deterministic mutations of them (byte flips, random
// bytes, inserts, deletions, truncations, splices, repeated chunks) until
// --runs inputs or --seconds have gone by. A crash, a sanitizer report or an
// uncaught exception ends the process, which fails the CTest test; the input
// is written to ./fuzz-smoke-crash-<target> first, so it can be kept as a
// regression. Real campaigns use libFuzzer instead (fuzz/run.sh).
//
// Usage: <target> [--runs=N] [--seconds=S] [--seed=N] DIR_OR_FILE...

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

// splitmix64: small, fast and the same on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }

 private:
  uint64_t state_;
};

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The input being run, kept where the crash handler can reach it (a test
// driver's only globals; the handler is best effort, not signal-safe).
std::string g_current;
std::string g_crash_file;

void SaveCurrent() {
  std::ofstream out(g_crash_file, std::ios::binary);
  out << g_current;
}

void Run(const std::string& input) {
  g_current = input;
  // A copy in its own allocation, so that ASan-less builds still see reads
  // past the end as often as possible (and the target cannot keep a pointer).
  std::vector<uint8_t> buf(input.begin(), input.end());
  LLVMFuzzerTestOneInput(buf.data(), buf.size());
}

const char* const kTokens[] = {"\n",    "\r\n", " ", "\t",   ",",  ":",   "-",   "0", "-1",
                               "1e308", "nan",  "{", "}",    "[",  "]",   "\"",  "'", "<",
                               ">",     "(",    ")", "\xFF", "\0", "and", "not", "or"};

std::string Mutate(const std::vector<std::string>& pool, Rng& rng) {
  std::string s = pool[rng.Below(pool.size())];
  int n = 1 + static_cast<int>(rng.Below(4));
  for (int k = 0; k < n; ++k) {
    switch (rng.Below(8)) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng.Below(s.size())] ^= static_cast<char>(1u << rng.Below(8));
        break;
      case 1:  // random byte
        if (!s.empty()) s[rng.Below(s.size())] = static_cast<char>(rng.Next());
        break;
      case 2:  // insert a token
      {
        const char* t = kTokens[rng.Below(std::size(kTokens))];
        s.insert(rng.Below(s.size() + 1), std::string(t, std::max<size_t>(1, std::strlen(t))));
        break;
      }
      case 3:  // delete a range
        if (!s.empty()) {
          size_t at = rng.Below(s.size());
          s.erase(at, 1 + rng.Below(std::min<size_t>(16, s.size() - at)));
        }
        break;
      case 4:  // truncate
        s.resize(rng.Below(s.size() + 1));
        break;
      case 5:  // splice with another input
      {
        const std::string& o = pool[rng.Below(pool.size())];
        size_t at = rng.Below(s.size() + 1);
        s = s.substr(0, at) + o.substr(rng.Below(o.size() + 1));
        break;
      }
      case 6:  // repeat a chunk
        if (!s.empty() && s.size() < 65536) {
          size_t at = rng.Below(s.size());
          std::string chunk = s.substr(at, 1 + rng.Below(32));
          size_t times = 1 + rng.Below(64);
          std::string rep;
          for (size_t i = 0; i < times; ++i) rep += chunk;
          s.insert(at, rep);
        }
        break;
      default:  // overwrite with an interesting byte
        if (!s.empty()) {
          static const char kBytes[] = {0, 1, 0x7F, static_cast<char>(0x80),
                                        static_cast<char>(0xFF)};
          s[rng.Below(s.size())] = kBytes[rng.Below(sizeof(kBytes))];
        }
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  long runs = 10000;
  double seconds = 2;
  uint64_t seed = 1;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.rfind("--runs=", 0) == 0) {
      runs = std::atol(argv[i] + 7);
    } else if (a.rfind("--seconds=", 0) == 0) {
      seconds = std::atof(argv[i] + 10);
    } else if (a.rfind("--seed=", 0) == 0) {
      seed = std::strtoull(argv[i] + 7, nullptr, 10);
    } else if (fs::is_directory(a)) {
      for (const auto& e : fs::recursive_directory_iterator(a)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else if (fs::is_regular_file(a)) {
      files.emplace_back(a);
    } else {
      std::cerr << "no such file or folder: " << a << "\n";
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  g_crash_file = "fuzz-smoke-crash-" + fs::path(argv[0]).filename().string();
  std::signal(SIGSEGV, [](int) {
    SaveCurrent();
    std::_Exit(139);
  });
  std::signal(SIGABRT, [](int) {
    SaveCurrent();
    std::_Exit(134);
  });

  std::vector<std::string> pool;
  for (const fs::path& f : files) {
    pool.push_back(ReadAll(f));
    Run(pool.back());
  }
  if (pool.empty()) pool.emplace_back();
  std::cout << "replayed " << files.size() << " inputs\n";

  Rng rng(seed);
  const auto start = std::chrono::steady_clock::now();
  long done = 0;
  for (; done < runs; ++done) {
    if (done % 64 == 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) {
      break;
    }
    Run(Mutate(pool, rng));
  }
  std::cout << "ran " << done << " mutated inputs (seed " << seed << ")\n";
  return 0;
}
