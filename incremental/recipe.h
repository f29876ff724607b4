// Training recipes: the references' defaults per dataset, task, step and method (SPEC-continual.md
// §4.5, §3.5.4, §3.9), which `strata train` applies to every option left unset and a per-setting
// binary applies as a whole.
//
//   optimiser   SGD, Nesterov momentum 0.9, weight decay 1e-4 on every parameter (MiB/PLOP)
//   schedule    poly, power 0.9, per iteration: lr = lr0 (1 - it / max_it)^0.9,
//               max_it = epochs x iterations per epoch (drop_last)
//   lr          0.01 at step 0, 0.001 at every later step
//   epochs      VOC: 30 per step, except the later steps of 10-1 (10, PLOP's script and csseg);
//               ADE20K: 60 per step
//   batch       24 (the references' total batch), crop 512 (train crop and test resize/crop)
//   lambda_kd   LwF 100; ILT 100 (and lambda_de 100); MiB 10, but 100 for VOC 15-1 (15-5s and its
//               random orders 15-5s_b..w) and VOC 10-1 (strata's choices table: the paper's and
//               cssegmentation's value; MiB's preset itself always sets 10)
//
// Label spaces other than the two references' (VOC kind with 21 labels, which includes a
// generated dataset of 20 classes, and ADE20K with 151) get the VOC numbers.
#pragma once

#include "incremental/task.h"

namespace strata::incremental {

struct Recipe {
  double lr = 0.01;
  int epochs = 30;
  int batch_size = 24;
  int crop_size = 512;
  double momentum = 0.9;
  bool nesterov = true;
  double weight_decay = 1e-4;
  double lr_power = 0.9;
};

// The reference recipe of `step` of `task` (throws for a step outside the task).
Recipe reference_recipe(const Task& task, int step);

// MiB's lambda_kd for `task`: 100 for VOC 15-1 (any order) and 10-1, 10 otherwise.
double mib_kd_weight(const Task& task);

}  // namespace strata::incremental
