// Args: a small, strict flag parser (no global flag registry, one set of flags per subcommand).
#include "tools/args.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace turbovid::tools {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv,
                                 const std::set<std::string>& value_flags,
                                 const std::set<std::string>& bool_flags) {
  Args args;
  bool only_positional = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (only_positional || a.size() < 3 || a.rfind("--", 0) != 0) {
      if (a == "--") {
        only_positional = true;
        continue;
      }
      args.positional_.push_back(a);
      continue;
    }
    std::string key = a.substr(2), value;
    size_t eq = key.find('=');
    bool has_value = eq != std::string::npos;
    if (has_value) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    }
    if (bool_flags.contains(key)) {
      if (has_value && value != "true" && value != "false") {
        return absl::InvalidArgumentError(absl::StrCat("--", key, ": expected true or false"));
      }
      args.values_[key] = has_value ? value : "true";
    } else if (value_flags.contains(key)) {
      if (!has_value) {
        if (i + 1 >= argv.size()) {
          return absl::InvalidArgumentError(absl::StrCat("--", key, ": missing value"));
        }
        value = argv[++i];
      }
      args.values_[key] = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", key));
    }
  }
  return args;
}

std::string Args::Get(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

absl::StatusOr<int64_t> Args::GetInt(const std::string& key, int64_t fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  int64_t v = 0;
  if (!absl::SimpleAtoi(it->second, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("--", key, ": '", it->second, "' is not an integer"));
  }
  return v;
}

absl::StatusOr<double> Args::GetDouble(const std::string& key, double fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  double v = 0;
  if (!absl::SimpleAtod(it->second, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("--", key, ": '", it->second, "' is not a number"));
  }
  return v;
}

}  // namespace turbovid::tools
