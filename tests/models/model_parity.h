// Shared by the model parity tests: reading a model case written by tools/torchref/models_*.py
// (layout and the reason for float64 references in tools/torchref/models_common.py) and comparing a
// strata model against it.
//
// check_model_parity runs the model twice from the reference state:
//   float32  forward only: the logits' largest error against the float64 reference must stay within
//            kF32ErrorBudgetVsPyTorch (tests/support/tolerances.h) times PyTorch's own float32 error;
//   float64  forward and backward: logits, loss, every parameter's gradient and (training) every
//            buffer after the forward match the float64 reference within the float32 tolerance.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "engine/safetensors.h"
#include "models/segmentation_model.h"

namespace strata::test {

// Loads <torchref dir>/<group>/<name>.safetensors (rank-4 tensors in strata's layouts); throws
// naming the file and the fixture when it is missing.
SafetensorsFile load_model_case(const std::string& group, const std::string& name);

// The tensors of `file` whose names start with `prefix`, with the prefix removed.
TensorMap with_prefix(const TensorMap& tensors, const std::string& prefix);

struct ParityOptions {
  bool training = false;
  bool aux = false;         // the loss adds aux_weight x cross-entropy of every aux head's logits
  double aux_weight = 0.5;  // torchvision's recipe; semseg's PSPNet 0.4
  // strata parameter name -> the reference's name, where they differ (cls.0 <- classifier.4).
  std::map<std::string, std::string> renamed;
  // Extra comparisons on the forward result (intermediate maps) against the mode's case.
  std::function<void(const models::ForwardResult&, const SafetensorsFile&)> check_outputs;
  models::ForwardOptions forward;
};

// Asks the forward for the low-resolution logits, the body and the head, and compares them with the
// case's "low_res", "body" and "head" maps (the other architectures' tests; MiB's adds pre-activations).
void compare_body_head_and_low_res(ParityOptions& options);

// Loads <name>_state into `model` (full mode) and checks it against <name>_train / <name>_eval as
// described above. Leaves the model in float64.
void check_model_parity(models::SegmentationModel& model, const std::string& group, const std::string& name,
                        const ParityOptions& options);

}  // namespace strata::test
