// Subcommands of turbovid-engine that live in their own files. Each returns the exit code.
#pragma once

#include <string>
#include <vector>

namespace turbovid::engine::tools {

int GenerateCommand(const std::vector<std::string>& args);            // generate.cc
int MakeTinyCheckpointCommand(const std::vector<std::string>& args);  // make_tiny.cc
int InspectCommand(const std::vector<std::string>& args);             // inspect.cc
int BenchCommand(const std::vector<std::string>& args);               // bench.cc

}  // namespace turbovid::engine::tools
