#include "testing/serve_testutil.h"

#include <cstdint>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>

namespace detops::testing {
namespace fs = std::filesystem;

std::vector<std::string> MonitoredServeArgv(const std::string& workspace, const std::string& model,
                                            const fs::path& monitor_policy,
                                            const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {
      DetopsBin(),       "--workspace", workspace,          "serve",
      "--model",         model,         "--port",           "0",
      "--poll-ms",       "100",         "--monitor-policy", monitor_policy.string(),
      "--monitor-every", "1",           "--sample-every",   "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

int WaitForServePort(ChildProcess& server, double timeout_s) {
  if (!server.WaitForOutput("ready on", timeout_s)) return 0;
  const std::string out = server.Output();
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(ready on http://127\.0\.0\.1:(\d+))"))) return 0;
  return std::stoi(m[1].str());
}

std::string TokenIn(const std::string& text) {
  std::smatch m;
  return std::regex_search(text, m, std::regex("dtk_[A-Za-z0-9_-]+")) ? m.str() : "";
}

std::string Dimmed(const std::string& jpeg, double factor) {
  cv::Mat img =
      cv::imdecode(cv::Mat(1, static_cast<int>(jpeg.size()), CV_8U, const_cast<char*>(jpeg.data())),
                   cv::IMREAD_COLOR);
  cv::Mat out;
  img.convertTo(out, -1, factor, 0);
  std::vector<uint8_t> buf;
  cv::imencode(".jpg", out, buf);
  return std::string(buf.begin(), buf.end());
}

Json TrueBoxes(const fs::path& photo, const Json& classes, int width, int height) {
  fs::path label = photo.parent_path().parent_path().parent_path() / "labels" /
                   photo.parent_path().filename() / photo.filename();
  label.replace_extension(".txt");
  std::ifstream in(label);
  Json boxes = Json::array();
  int cls;
  double cx, cy, w, h;
  while (in >> cls >> cx >> cy >> w >> h) {
    boxes.push_back({{"class", classes[cls]},
                     {"box",
                      {(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                       (cy + h / 2) * height}}});
  }
  return boxes;
}

}  // namespace detops::testing
