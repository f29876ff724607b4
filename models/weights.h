// Loading and saving a SegmentationModel's weights as safetensors files in PyTorch's layouts
// (engine/safetensors.h), with the model's state-dict names (models/segmentation_model.h).
// tools/convert_weights.py turns PyTorch checkpoints (.pth: torchvision state dicts, MiB/PLOP step
// checkpoints, mapillary/inplace_abn ImageNet checkpoints) into such files.
//
// Modes:
//   full           every model key must be in the file and every file key in the model
//   previous_step  a step-t model loading step t-1's weights: the file may lack the classifiers
//                  of the newest steps (cls.{k}.* for k >= the file's step count); nothing else
//   backbone       ImageNet initialisation: only the file's backbone keys (backbone.* or body.*)
//                  are loaded and they must cover the backbone exactly; other keys are reported as
//                  unexpected and ignored; the head and classifier keep their initialisation
// A torchvision state dict names the classifier classifier.4; for a torchvision-flavour model with
// one step it is loaded as cls.0 (and reported as renamed).
//
// Errors (strata::Error naming the file): unreadable or malformed files (the safetensors loader
// names the problem), keys that do not match the mode (listing the missing and unexpected keys),
// a file with the other flavour's names, a tensor of the wrong shape (naming the key and both
// shapes). Nothing is written into the model unless the whole file is accepted.
#pragma once

#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/safetensors.h"
#include "models/segmentation_model.h"

namespace strata::models {

enum class LoadMode { full, previous_step, backbone };

struct WeightsReport {
  std::string path;
  nn::LoadReport keys;                  // loaded / missing / unexpected, in the model's names
  std::vector<std::string> renamed;     // "classifier.4.weight -> cls.0.weight"
  Metadata metadata;                    // the file's metadata
  std::string str() const;              // "<path>: loaded N tensors; ..."
};

WeightsReport load_weights(SegmentationModel& model, const std::string& path, LoadMode mode = LoadMode::full);
// The same from tensors already in memory (strata layouts); `source` names them in messages.
WeightsReport load_weights(SegmentationModel& model, const TensorMap& tensors, LoadMode mode,
                           const std::string& source);

// Writes every parameter and buffer (PyTorch layouts, atomically) with metadata describing the
// model (format, flavour, depth, norm, output_stride, classes) plus `extra`.
void save_weights(const SegmentationModel& model, const std::string& path, const Metadata& extra = {});

}  // namespace strata::models
