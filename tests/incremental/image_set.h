// A VOC-layout image set for the replay tests (tests/incremental/test_replay.cpp and the CUDA suite's
// tests/cuda/test_replay_on_cuda.cpp), as `strata invert` writes one: copies of a generated dataset's
// training images stand for generated ones (their labels serve replay only as the void mark).
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/label_index.h"
#include "incremental/protocol.h"
#include "incremental/task.h"

namespace strata::test {

// The step-0 training images of `task` (overlapped) in `root`'s train_aug.
inline std::vector<int64_t> step0_images(const std::string& root, const std::string& task) {
  const data::Dataset dataset = data::Dataset::voc(root, "train_aug");
  return incremental::training_images(data::load_label_index(dataset), incremental::Task::create(dataset, task), 0,
                                      incremental::Protocol::overlapped);
}

// `samples` of `root`'s train_aug copied into `dir`: JPEGImages/, SegmentationClassAug/ and
// splits/train.txt in DeepLab's form.
inline void write_image_set(const std::string& root, const std::vector<int64_t>& samples, const std::string& dir) {
  namespace fs = std::filesystem;
  const data::Dataset source = data::Dataset::voc(root, "train_aug");
  const fs::path out(dir);
  fs::create_directories(out / "JPEGImages");
  fs::create_directories(out / "SegmentationClassAug");
  fs::create_directories(out / "splits");
  std::ofstream list(out / "splits" / "train.txt");
  for (int64_t i : samples) {
    const data::Sample& s = source.sample(i);
    fs::copy_file(s.image, out / "JPEGImages" / (s.stem + ".jpg"), fs::copy_options::overwrite_existing);
    fs::copy_file(s.label, out / "SegmentationClassAug" / (s.stem + ".png"), fs::copy_options::overwrite_existing);
    list << "/JPEGImages/" << s.stem << ".jpg /SegmentationClassAug/" << s.stem << ".png\n";
  }
}

}  // namespace strata::test
