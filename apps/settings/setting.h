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
};

extern const Setting kSetting;

}  // namespace strata::app
