#include "pipeline/train_options.h"

namespace detops {
namespace {

Json RecipeJson(const TrainOptions& o) {
  const AugmentOptions& a = o.augment;
  return {{"variant", o.variant},
          {"epochs", o.epochs},
          {"imgsz", o.imgsz},
          {"batch", o.batch},
          {"lr", o.lr},
          {"backbone_lr_scale", o.backbone_lr_scale},
          {"weight_decay", o.weight_decay},
          {"warmup_epochs", o.warmup_epochs},
          {"ema_decay", o.ema_decay},
          {"grad_clip", o.grad_clip},
          {"box_weight", o.box_weight},
          {"inside_box_weight", o.inside_box_weight},
          {"patience", o.patience},
          {"eval_every", o.eval_every},
          {"close_mosaic", o.close_mosaic},
          {"max_minutes", o.max_minutes},
          {"seed", o.seed},
          {"threads", o.threads},
          {"loader_threads", o.loader_threads},
          {"device", o.device},
          {"precision", o.precision},
          {"init_weights", o.init_weights.string()},
          {"augment",
           {{"mosaic", a.mosaic},
            {"flip", a.flip},
            {"scale", a.scale},
            {"translate", a.translate},
            {"hsv_h", a.hsv_h},
            {"hsv_s", a.hsv_s},
            {"hsv_v", a.hsv_v},
            {"gamma", a.gamma},
            {"dark", a.dark},
            {"haze", a.haze},
            {"noise", a.noise},
            {"blur", a.blur}}}};
}

}  // namespace

Json TrainOptionsToJson(const TrainOptions& o) {
  Json j = RecipeJson(o);
  // Only when set: runs without a map record what they always did.
  if (!o.init_class_map.empty()) j["init_class_map"] = o.init_class_map;
  return j;
}

Result<TrainOptions> TrainOptionsFromJson(const Json& j) {
  try {
    TrainOptions o;
    o.variant = j.at("variant");
    o.epochs = j.at("epochs");
    o.imgsz = j.at("imgsz");
    o.batch = j.at("batch");
    o.lr = j.at("lr");
    o.backbone_lr_scale = j.value("backbone_lr_scale", 1.0);  // runs before it was a knob
    o.weight_decay = j.at("weight_decay");
    o.warmup_epochs = j.at("warmup_epochs");
    o.ema_decay = j.at("ema_decay");
    o.grad_clip = j.at("grad_clip");
    o.box_weight = j.value("box_weight", o.box_weight);  // runs before it was a knob
    // Runs recorded before the key existed trained without the term.
    o.inside_box_weight = j.value("inside_box_weight", 0.0);
    o.patience = j.at("patience");
    o.eval_every = j.at("eval_every");
    o.close_mosaic = j.at("close_mosaic");
    o.max_minutes = j.at("max_minutes");
    o.seed = j.at("seed");
    o.threads = j.at("threads");
    o.loader_threads = j.at("loader_threads");
    o.device = j.at("device");
    o.precision = j.value("precision", std::string("fp32"));  // runs before bf16 trained in fp32
    o.init_weights = j.at("init_weights").get<std::string>();
    o.init_class_map =
        j.value("init_class_map", std::map<std::string, std::string>{});  // absent: none
    const Json& a = j.at("augment");
    o.augment.mosaic = a.at("mosaic");
    o.augment.flip = a.at("flip");
    o.augment.scale = a.at("scale");
    o.augment.translate = a.at("translate");
    o.augment.hsv_h = a.at("hsv_h");
    o.augment.hsv_s = a.at("hsv_s");
    o.augment.hsv_v = a.at("hsv_v");
    o.augment.gamma = a.at("gamma");
    o.augment.dark = a.at("dark");
    o.augment.haze = a.value("haze", o.augment.haze);  // runs before haze was a knob
    o.augment.noise = a.at("noise");
    o.augment.blur = a.at("blur");
    o.augment.imgsz = o.imgsz;
    return o;
  } catch (const Json::exception& e) {
    return Status::InvalidInput(std::string("training options: ") + e.what());
  }
}

std::map<std::string, std::string> TrainOptionsToParams(const TrainOptions& o) {
  std::map<std::string, std::string> out;
  Json flat = TrainOptionsToJson(o).flatten();
  for (const auto& [k, v] : flat.items()) {
    std::string key = k.substr(1);  // "/augment/mosaic" -> "augment.mosaic"
    for (char& c : key) c = c == '/' ? '.' : c;
    out[key] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  return out;
}

}  // namespace detops
