// Runs Debian's `spm_train` binary (package `sentencepiece`) as a child process, so that training
// tiny tokenizers needs no libsentencepiece_train in our processes.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace turbovid::engine::spm {

// Path of the spm_train executable: $TV_SPM_TRAIN if set, else the first `spm_train` on $PATH,
// else /usr/bin/spm_train. FailedPrecondition if none is an executable file.
absl::Status FindSpmTrain(std::string* path);

// Runs `spm_train <flags...>` (each flag "--name=value") without a shell, its output captured,
// in folder `cwd` when not empty (relative --input/--model_prefix keep the model's recorded
// TrainerSpec free of absolute paths). FailedPrecondition if spm_train is not installed, Internal
// if it fails (with its output).
absl::Status RunSpmTrain(const std::vector<std::string>& flags, const std::string& cwd = "");

}  // namespace turbovid::engine::spm
