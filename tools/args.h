// Command-line parsing for the CLI's subcommands: `--key value`, `--key=value`, boolean
// `--flag`, and positional arguments. Unknown flags are errors that name the flag.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace turbovid::tools {

class Args {
 public:
  // value_flags take a value; bool_flags do not. Anything else starting with "--" is an error.
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv,
                                    const std::set<std::string>& value_flags,
                                    const std::set<std::string>& bool_flags);

  bool Has(const std::string& key) const { return values_.contains(key); }
  std::string Get(const std::string& key, const std::string& fallback = "") const;
  absl::StatusOr<int64_t> GetInt(const std::string& key, int64_t fallback) const;
  absl::StatusOr<double> GetDouble(const std::string& key, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  absl::flat_hash_map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace turbovid::tools
