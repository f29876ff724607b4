// The setting a per-setting binary runs (apps/settings/setting_main.cpp). strata_setting() in
// apps/CMakeLists.txt generates, for each binary, one source file that defines kSetting.
#pragma once

namespace strata::app {

struct Setting {
  const char* binary;   // "strata_voc_15-5_ov_mib"
  const char* dataset;  // "voc" | "ade"
  const char* task;     // a task name of incremental/task.h
  bool overlapped;      // the protocol: overlapped, else disjoint
  const char* method;   // a method preset of incremental/method.h
  // Train options the setting fixes beyond the preset, as on `strata train`'s command line, e.g. the
  // LwF ablation log's "--arch pspnet --backbone resnet50 --crop-size 473 --kd-loss l2 ..."; "" for the
  // references' DeepLabV3 settings.
  const char* fixed_options;
  const char* model_text;  // the usage's "model:" line
};

extern const Setting kSetting;

}  // namespace strata::app
