// Request bodies as the server receives them: the input is the bytes of one
// HTTP request on a connection. cpp-httplib (the system library the server
// links) parses the request line, headers, chunked or sized body and the
// multipart/form-data parts, exactly as in `detops serve`; the handlers then
// do what the predict routes do with a body: pick the "file"/"image" part
// (or every file part for a batch) and run the image check and decode on it.
//
// cpp-httplib comes from Debian as a shared library without coverage
// instrumentation, so libFuzzer steers by detops' code and by the shape of
// the seeds; its sanitizers still see every byte the library hands over.

#include <httplib.h>

#include "fuzz_util.h"
#include "serve/decode.h"

namespace {

// One request's bytes as a connection; writes (the response) are dropped.
class BytesStream : public httplib::Stream {
 public:
  explicit BytesStream(std::string_view in) : in_(in) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    size_t n = std::min(size, in_.size() - pos_);
    std::memcpy(ptr, in_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char*, size_t size) override { return static_cast<ssize_t>(size); }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 8080;
  }
  socket_t socket() const override { return 0; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

void CheckAndDecode(const std::string& content) {
  auto img = detops::serve::CheckImage(content, detops::serve::DecodeLimits{});
  if (img.ok()) (void)detops::serve::DecodePixels(content, 320, *img);
}

class FuzzServer : public httplib::Server {
 public:
  FuzzServer() {
    set_payload_max_length(32u << 20);  // ServeOptions::max_body_bytes' default
    // The part selection of ServerImpl::Predict and PredictBatch.
    Post("/v1/predict", [](const httplib::Request& req, httplib::Response& res) {
      if (req.is_multipart_form_data()) {
        for (const char* field : {"file", "image"}) {
          if (req.has_file(field)) {
            CheckAndDecode(req.files.find(field)->second.content);
            break;
          }
        }
      } else if (detops::serve::IsImageMediaType(req.get_header_value("Content-Type"))) {
        CheckAndDecode(req.body);
      }
      res.set_content("{}", "application/json");
    });
    Post("/v1/predict/batch", [](const httplib::Request& req, httplib::Response& res) {
      if (!req.is_multipart_form_data()) return;
      for (const auto& [name, part] : req.files) {
        if (!part.filename.empty() || name == "file" || name == "files" || name == "image") {
          CheckAndDecode(part.content);
        }
      }
      res.set_content("{}", "application/json");
    });
  }
  void Handle(std::string_view bytes) {
    BytesStream stream(bytes);
    bool closed = false;
    process_request(stream, /*close_connection=*/true, closed, nullptr);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FuzzServer server;
  server.Handle(detops::fuzz::AsText(data, size));
  return 0;
}
