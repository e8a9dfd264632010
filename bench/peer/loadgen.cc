// An open-loop HTTP load generator (what wrk2 does; wrk2 is not in Debian):
// sends one request body at a fixed rate whether or not earlier requests
// have been answered, and measures each request's latency from the time it
// was scheduled to be sent, so a server that falls behind shows its queueing
// in the percentiles instead of slowing the generator down (no coordinated
// omission). One thread, epoll, a timerfd for the schedule, HTTP/1.1 with
// keep-alive when the server allows it (reconnects when it closes).
//
// Standalone, no detops code; bench/serve_compare.sh compiles it:
//   c++ -O2 -std=c++20 -o loadgen bench/peer/loadgen.cc
//   loadgen --port 8080 --path /v1/predict --body img.jpg --rate 100 --duration 10
// Prints one line:
//   LOADGEN target_rps=.. seconds=.. sent=.. ok=.. errors=.. unfinished=..
//           rps=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. connections=..

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string path = "/v1/predict";
  std::string body_file;
  std::string content_type = "image/jpeg";
  double rate = 10;      // requests per second
  double duration = 10;  // seconds of sending
  double warmup = 0;     // seconds sent first and not measured
  int connections = 64;  // at most this many open at once
  double drain = 10;     // seconds to wait for answers after the last send
  bool poisson = false;  // exponential gaps instead of a fixed interval
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "loadgen: %s\n", message.c_str());
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--host")
      o.host = value();
    else if (a == "--port")
      o.port = std::stoi(value());
    else if (a == "--path")
      o.path = value();
    else if (a == "--body")
      o.body_file = value();
    else if (a == "--content-type")
      o.content_type = value();
    else if (a == "--rate")
      o.rate = std::stod(value());
    else if (a == "--duration")
      o.duration = std::stod(value());
    else if (a == "--warmup")
      o.warmup = std::stod(value());
    else if (a == "--connections")
      o.connections = std::stoi(value());
    else if (a == "--drain")
      o.drain = std::stod(value());
    else if (a == "--poisson")
      o.poisson = true;
    else
      Die("unknown argument " + a + " (see the top of bench/peer/loadgen.cc)");
  }
  if (o.rate <= 0 || o.duration <= 0 || o.connections < 1) Die("rate, duration, connections > 0");
  return o;
}

enum class ConnState { kClosed, kConnecting, kWriting, kReading, kIdle };

struct Conn {
  int fd = -1;
  ConnState state = ConnState::kClosed;
  size_t written = 0;
  std::string in;
  double scheduled = 0;  // seconds since start: when the request was due
  bool measured = false;
  bool reused = false;  // has answered a request on this socket already
};

// Parses a complete HTTP response at the front of `in`. Returns its length
// (0: not complete yet), and the status and whether the server closes.
size_t ParseResponse(const std::string& in, bool eof, int* status, bool* close) {
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  std::string_view head(in.data(), head_end);
  *status = 0;
  if (head.size() > 12) std::from_chars(head.data() + 9, head.data() + 12, *status);
  *close = head.substr(0, 8) == "HTTP/1.0";
  long content_length = -1;
  bool chunked = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    size_t next = head.find("\r\n", pos + 2);
    std::string line(
        head.substr(pos + 2, (next == std::string_view::npos ? head.size() : next) - pos - 2));
    std::transform(line.begin(), line.end(), line.begin(), ::tolower);
    if (line.rfind("content-length:", 0) == 0) content_length = std::atol(line.c_str() + 15);
    if (line.rfind("transfer-encoding:", 0) == 0 && line.find("chunked") != std::string::npos) {
      chunked = true;
    }
    if (line.rfind("connection:", 0) == 0) {
      if (line.find("close") != std::string::npos) *close = true;
      if (line.find("keep-alive") != std::string::npos) *close = false;
    }
    pos = next;
  }
  size_t body = head_end + 4;
  if (chunked) {
    size_t p = body;
    while (true) {
      size_t eol = in.find("\r\n", p);
      if (eol == std::string::npos) return 0;
      long size = std::strtol(in.c_str() + p, nullptr, 16);
      if (size == 0) {
        size_t end = in.find("\r\n\r\n", eol);  // optional trailers
        if (end == std::string::npos) {
          return in.size() >= eol + 4 && in.compare(eol, 4, "\r\n\r\n") == 0 ? eol + 4 : 0;
        }
        return end + 4;
      }
      p = eol + 2 + static_cast<size_t>(size) + 2;
      if (p > in.size()) return 0;
    }
  }
  if (content_length >= 0) {
    size_t end = body + static_cast<size_t>(content_length);
    return in.size() >= end ? end : 0;
  }
  *close = true;  // body runs to the end of the connection
  return eof ? in.size() : 0;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  return sorted[std::min(sorted.size() - 1, i == 0 ? 0 : i - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  std::ifstream f(o.body_file, std::ios::binary);
  if (!f) Die("cannot read --body " + o.body_file);
  std::string body((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string request = "POST " + o.path + " HTTP/1.1\r\nHost: " + o.host + ":" +
                              std::to_string(o.port) + "\r\nContent-Type: " + o.content_type +
                              "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                              body;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1)
    Die("--host must be an IPv4 address");

  int ep = epoll_create1(0);
  int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.u64 = ~0ull;
  epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev);

  std::vector<Conn> conns(static_cast<size_t>(o.connections));
  std::deque<std::pair<double, bool>> due;  // scheduled time, measured
  std::vector<double> latencies_ms;
  long sent = 0, ok = 0, errors = 0;
  int max_open = 0;
  std::mt19937_64 rng(1);
  std::exponential_distribution<double> gap(o.rate);

  const Clock::time_point t0 = Clock::now();
  auto now = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  const double send_end = o.warmup + o.duration;
  double next_send = 0;
  auto arm = [&](double at) {
    itimerspec ts{};
    timespec start{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    double rel = std::max(at - now(), 1e-6);
    long ns = start.tv_nsec + static_cast<long>(rel * 1e9);
    ts.it_value.tv_sec = start.tv_sec + ns / 1000000000;
    ts.it_value.tv_nsec = ns % 1000000000;
    timerfd_settime(timer, TFD_TIMER_ABSTIME, &ts, nullptr);
  };

  auto close_conn = [&](Conn& c) {
    if (c.fd >= 0) {
      epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
    }
    c = Conn{};
  };
  auto watch = [&](Conn& c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = static_cast<uint64_t>(&c - conns.data());
    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  };
  auto finish = [&](Conn& c, bool success) {
    if (c.measured) {
      if (success) {
        ++ok;
        latencies_ms.push_back((now() - c.scheduled) * 1000);
      } else {
        ++errors;
      }
    }
  };
  auto try_write = [&](Conn& c) {
    while (c.written < request.size()) {
      ssize_t n =
          ::send(c.fd, request.data() + c.written, request.size() - c.written, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) {
          watch(c, EPOLLOUT);
          c.state = ConnState::kWriting;
          return;
        }
        finish(c, false);
        close_conn(c);
        return;
      }
      c.written += static_cast<size_t>(n);
    }
    c.state = ConnState::kReading;
    watch(c, EPOLLIN);
  };
  auto start_request = [&](Conn& c, double scheduled, bool measured) {
    c.scheduled = scheduled;
    c.measured = measured;
    c.written = 0;
    c.in.clear();
    ++sent;
    if (c.fd < 0) {
      c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u64 = static_cast<uint64_t>(&c - conns.data());
      epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
      c.reused = false;
      if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 &&
          errno != EINPROGRESS) {
        finish(c, false);
        close_conn(c);
        return;
      }
      c.state = ConnState::kConnecting;
      return;
    }
    try_write(c);
  };
  // Hands due requests to idle connections (opened ones first).
  auto dispatch = [&] {
    while (!due.empty()) {
      Conn* pick = nullptr;
      for (Conn& c : conns) {
        if (c.state == ConnState::kIdle) {
          pick = &c;
          break;
        }
        if (c.state == ConnState::kClosed && pick == nullptr) pick = &c;
      }
      if (pick == nullptr) return;
      auto [at, measured] = due.front();
      due.pop_front();
      start_request(*pick, at, measured);
    }
    int open = 0;
    for (const Conn& c : conns) open += c.fd >= 0;
    max_open = std::max(max_open, open);
  };

  arm(next_send);
  std::vector<epoll_event> events(static_cast<size_t>(o.connections) + 1);
  double deadline = send_end + o.drain;
  while (true) {
    double t = now();
    bool busy = !due.empty();
    for (const Conn& c : conns)
      busy = busy || (c.state != ConnState::kClosed && c.state != ConnState::kIdle);
    if (next_send >= send_end && !busy) break;
    if (t > deadline) break;
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == ~0ull) {
        uint64_t expirations;
        (void)::read(timer, &expirations, sizeof expirations);
        t = now();
        while (next_send < send_end && next_send <= t) {
          due.emplace_back(next_send, next_send >= o.warmup);
          next_send += o.poisson ? gap(rng) : 1.0 / o.rate;
        }
        if (next_send < send_end) arm(next_send);
        continue;
      }
      Conn& c = conns[events[i].data.u64];
      if (c.fd < 0) continue;
      if (c.state == ConnState::kConnecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          finish(c, false);
          close_conn(c);
          continue;
        }
        try_write(c);
        continue;
      }
      if (c.state == ConnState::kWriting) {
        try_write(c);
        continue;
      }
      // Reading (or an idle socket the server closed).
      char buf[65536];
      bool eof = false;
      while (true) {
        ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
        if (r > 0) {
          c.in.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r == 0 || errno != EAGAIN) eof = true;
        break;
      }
      if (c.state == ConnState::kIdle) {
        if (eof) close_conn(c);
        continue;
      }
      int status = 0;
      bool closes = false;
      size_t len = ParseResponse(c.in, eof, &status, &closes);
      if (len == 0) {
        if (eof) {
          // A kept-alive socket the server had closed before our request
          // reached it: send again on a fresh one, same schedule.
          bool retry = c.reused && c.in.empty();
          double at = c.scheduled;
          bool measured = c.measured;
          if (!retry) finish(c, false);
          close_conn(c);
          if (retry) {
            --sent;
            due.emplace_front(at, measured);
          }
        }
        continue;
      }
      finish(c, status >= 200 && status < 300);
      if (closes || eof) {
        close_conn(c);
      } else {
        c.state = ConnState::kIdle;
        c.reused = true;
        c.in.clear();
      }
    }
    dispatch();
  }
  long unfinished = 0;
  for (const Conn& c : conns)
    unfinished += c.state != ConnState::kClosed && c.state != ConnState::kIdle && c.measured;
  for (const auto& d : due) unfinished += d.second;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  std::printf(
      "LOADGEN target_rps=%.2f seconds=%.2f sent=%ld ok=%ld errors=%ld unfinished=%ld rps=%.2f "
      "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f connections=%d\n",
      o.rate, o.duration, sent, ok, errors, unfinished, ok / o.duration,
      Percentile(latencies_ms, 50), Percentile(latencies_ms, 90), Percentile(latencies_ms, 99),
      latencies_ms.empty() ? 0.0 : latencies_ms.back(), max_open);
  return 0;
}
