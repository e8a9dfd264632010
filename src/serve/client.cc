// The HTTP client behind `detops client`.

#include <httplib.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "serve/serve.h"

namespace detops {
namespace {

Result<std::unique_ptr<httplib::Client>> Connect(const std::string& url, const ClientOptions& o) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return Status::InvalidInput("server URL '" + url +
                                "': expected http://HOST:PORT or https://...");
  }
  auto c = std::make_unique<httplib::Client>(url);
  if (!c->is_valid()) return Status::InvalidInput("server URL '" + url + "' is not usable");
  c->set_connection_timeout(o.timeout_s, 0);
  c->set_read_timeout(o.timeout_s, 0);
  c->set_write_timeout(o.timeout_s, 0);
  if (!o.token.empty()) c->set_bearer_token_auth(o.token.c_str());
  if (!o.ca_cert.empty()) c->set_ca_cert_path(o.ca_cert.c_str());
  c->enable_server_certificate_verification(o.verify_tls);
  return c;
}

// The error a server answered with, or the transport error.
Status Failure(const std::string& url, const httplib::Result& r) {
  if (!r) {
    return Status::Unavailable("cannot reach " + url + ": " + httplib::to_string(r.error()));
  }
  std::string message = r->body;
  auto j = ParseJson(r->body, "the server's answer");
  if (j.ok() && j->contains("error") && (*j)["error"].is_object()) {
    message = (*j)["error"].value("message", r->body);
  }
  std::string text = "HTTP " + std::to_string(r->status) + ": " + message;
  return r->status >= 500 ? Status::Unavailable(text) : Status::InvalidInput(text);
}

std::string MediaType(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".png") return "image/png";
  if (ext == ".webp") return "image/webp";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  return "application/octet-stream";
}

}  // namespace

Result<RemotePrediction> ClientPredict(const std::string& url, const std::filesystem::path& image,
                                       const ClientOptions& o) {
  std::ifstream in(image, std::ios::binary);
  if (!in) return Status::InvalidInput("cannot read " + image.string());
  std::stringstream bytes;
  bytes << in.rdbuf();
  ASSIGN_OR_RETURN(auto client, Connect(url, o));
  const auto t0 = std::chrono::steady_clock::now();
  std::string path = "/v1/predict" + (o.query.empty() ? "" : "?" + o.query);
  auto r = client->Post(path.c_str(), bytes.str(), MediaType(image).c_str());
  RemotePrediction p;
  p.roundtrip_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!r || r->status != 200) return Failure(url, r);
  p.json = r->body;
  ASSIGN_OR_RETURN(Json j, ParseJson(r->body, "the server's answer"));
  try {
    p.id = j.at("id").get<std::string>();
    p.model = j.at("model").at("name").get<std::string>() + "@" +
              std::to_string(j.at("model").at("version").get<int>());
    p.width = j.at("image").at("width").get<int>();
    p.height = j.at("image").at("height").get<int>();
    p.server_ms = j.at("timings_ms").at("total").get<double>();
    for (const Json& d : j.at("detections")) {
      Detection det;
      det.class_name = d.at("class").get<std::string>();
      det.class_id = d.at("class_id").get<int>();
      det.score = d.at("score").get<float>();
      const Json& b = d.at("box");
      det.x1 = b.at(0).get<float>();
      det.y1 = b.at(1).get<float>();
      det.x2 = b.at(2).get<float>();
      det.y2 = b.at(3).get<float>();
      p.detections.push_back(det);
    }
  } catch (const Json::exception& e) {
    return Status::Corruption(std::string("unexpected answer from the server: ") + e.what());
  }
  return p;
}

Result<std::string> ClientFeedback(const std::string& url, const std::string& prediction_id,
                                   const std::vector<FeedbackBox>& boxes, const ClientOptions& o) {
  Json body = {{"prediction_id", prediction_id}, {"boxes", Json::array()}};
  for (const FeedbackBox& b : boxes) {
    body["boxes"].push_back({{"class", b.class_name}, {"box", {b.x1, b.y1, b.x2, b.y2}}});
  }
  ASSIGN_OR_RETURN(auto client, Connect(url, o));
  auto r = client->Post("/v1/feedback", body.dump(), "application/json");
  if (!r || r->status != 201) return Failure(url, r);
  return r->body;
}

Result<std::vector<std::string>> ClientModelClasses(const std::string& url,
                                                    const ClientOptions& o) {
  ASSIGN_OR_RETURN(auto client, Connect(url, o));
  auto r = client->Get("/v1/models");
  if (!r || r->status != 200) return Failure(url, r);
  ASSIGN_OR_RETURN(Json j, ParseJson(r->body, "GET /v1/models"));
  try {
    return j.at("serving").at("classes").get<std::vector<std::string>>();
  } catch (const Json::exception& e) {
    return Status::Corruption(std::string("unexpected answer from the server: ") + e.what());
  }
}

}  // namespace detops
