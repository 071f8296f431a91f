// ConfigNode: every yaml-cpp call that can throw is wrapped here and turned into a Status.
#include "common/config.h"

#include <charconv>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace turbovid::common {
namespace {

std::string ScalarText(const YAML::Node& node) {
  try {
    return node.Scalar();
  } catch (const std::exception&) {
    return "";
  }
}

std::string Describe(const YAML::Node& node) {
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "null";
  return absl::StrCat("'", ScalarText(node), "'");
}

}  // namespace

ConfigNode::ConfigNode(std::shared_ptr<const YAML::Node> node, std::string source, std::string path)
    : node_(std::move(node)), source_(std::move(source)), path_(std::move(path)) {}

absl::StatusOr<ConfigNode> ConfigNode::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open config file"));
  std::stringstream text;
  text << in.rdbuf();
  return LoadString(text.str(), path);
}

absl::StatusOr<ConfigNode> ConfigNode::LoadString(const std::string& text,
                                                  const std::string& source) {
  try {
    auto node = std::make_shared<const YAML::Node>(YAML::Load(text));
    return ConfigNode(std::move(node), source, "");
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML: ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": YAML: ", e.what()));
  }
}

bool ConfigNode::IsMap() const { return node_->IsMap(); }
bool ConfigNode::IsSequence() const { return node_->IsSequence(); }
bool ConfigNode::IsNull() const { return !node_->IsDefined() || node_->IsNull(); }

bool ConfigNode::Has(const std::string& key) const {
  if (!node_->IsMap()) return false;
  try {
    const YAML::Node child = (*node_)[key];
    return child.IsDefined();
  } catch (const std::exception&) {
    return false;
  }
}

std::vector<std::string> ConfigNode::Keys() const {
  std::vector<std::string> keys;
  if (!node_->IsMap()) return keys;
  try {
    for (const auto& item : *node_) keys.push_back(item.first.as<std::string>());
  } catch (const std::exception&) {
  }
  return keys;
}

std::string ConfigNode::Where() const {
  const YAML::Mark mark = node_->Mark();
  std::string where = source_;
  if (!mark.is_null()) absl::StrAppend(&where, ":", mark.line + 1);
  absl::StrAppend(&where, ": ", path_.empty() ? "(top level)" : path_);
  return where;
}

std::string ConfigNode::ChildPath(const std::string& key) const {
  return path_.empty() ? key : absl::StrCat(path_, ".", key);
}

absl::Status ConfigNode::Error(const std::string& what) const {
  return absl::InvalidArgumentError(absl::StrCat(Where(), ": ", what));
}

absl::StatusOr<ConfigNode> ConfigNode::Child(const std::string& key) const {
  if (!node_->IsMap()) {
    if (IsNull()) return Error(absl::StrCat("missing key '", key, "'"));
    return Error(absl::StrCat("expected a map with key '", key, "', got ", Describe(*node_)));
  }
  try {
    const YAML::Node child = (*node_)[key];
    if (!child.IsDefined()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": ", ChildPath(key), ": missing required key"));
    }
    return ConfigNode(std::make_shared<const YAML::Node>(child), source_, ChildPath(key));
  } catch (const std::exception& e) {
    return Error(absl::StrCat("key '", key, "': ", e.what()));
  }
}

absl::StatusOr<std::vector<ConfigNode>> ConfigNode::Elements() const {
  std::vector<ConfigNode> out;
  if (IsNull()) return out;
  if (!node_->IsSequence()) return Error(absl::StrCat("expected a list, got ", Describe(*node_)));
  try {
    for (size_t i = 0; i < node_->size(); ++i) {
      out.push_back(ConfigNode(std::make_shared<const YAML::Node>((*node_)[i]), source_,
                               absl::StrCat(path_, "[", i, "]")));
    }
  } catch (const std::exception& e) {
    return Error(e.what());
  }
  return out;
}

absl::StatusOr<std::string> ConfigNode::AsString() const {
  if (!node_->IsScalar()) return Error(absl::StrCat("expected a string, got ", Describe(*node_)));
  return ScalarText(*node_);
}

absl::StatusOr<int64_t> ConfigNode::AsInt() const {
  if (!node_->IsScalar()) {
    return Error(absl::StrCat("expected an integer, got ", Describe(*node_)));
  }
  const std::string text = ScalarText(*node_);
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) {
    return Error(absl::StrCat("expected an integer, got '", text, "'"));
  }
  return value;
}

absl::StatusOr<double> ConfigNode::AsDouble() const {
  if (!node_->IsScalar()) return Error(absl::StrCat("expected a number, got ", Describe(*node_)));
  const std::string text = ScalarText(*node_);
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) {
    return Error(absl::StrCat("expected a number, got '", text, "'"));
  }
  return value;
}

absl::StatusOr<bool> ConfigNode::AsBool() const {
  if (!node_->IsScalar()) {
    return Error(absl::StrCat("expected true or false, got ", Describe(*node_)));
  }
  const std::string text = absl::AsciiStrToLower(ScalarText(*node_));
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  return Error(absl::StrCat("expected true or false, got '", ScalarText(*node_), "'"));
}

absl::Status ConfigNode::CheckKeys(std::initializer_list<const char*> known) const {
  for (const std::string& key : Keys()) {
    bool found = false;
    for (const char* k : known) found = found || key == k;
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": ", ChildPath(key), ": unknown key"));
    }
  }
  return absl::OkStatus();
}

namespace {

template <typename T, typename Convert>
absl::Status RequireImpl(const ConfigNode& node, const std::string& key, T* out, Convert convert) {
  absl::StatusOr<ConfigNode> child = node.Child(key);
  if (!child.ok()) return child.status();
  auto value = convert(*child);
  if (!value.ok()) return value.status();
  *out = static_cast<T>(*value);
  return absl::OkStatus();
}

}  // namespace

absl::Status ConfigNode::Require(const std::string& key, std::string* out) const {
  return RequireImpl(*this, key, out, [](const ConfigNode& n) { return n.AsString(); });
}
absl::Status ConfigNode::Require(const std::string& key, int64_t* out) const {
  return RequireImpl(*this, key, out, [](const ConfigNode& n) { return n.AsInt(); });
}
absl::Status ConfigNode::Require(const std::string& key, int* out) const {
  int64_t wide = 0;
  absl::Status status = Require(key, &wide);
  if (!status.ok()) return status;
  if (wide < INT32_MIN || wide > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": ", ChildPath(key), ": ", wide, " does not fit in 32 bits"));
  }
  *out = static_cast<int>(wide);
  return absl::OkStatus();
}
absl::Status ConfigNode::Require(const std::string& key, double* out) const {
  return RequireImpl(*this, key, out, [](const ConfigNode& n) { return n.AsDouble(); });
}
absl::Status ConfigNode::Require(const std::string& key, bool* out) const {
  return RequireImpl(*this, key, out, [](const ConfigNode& n) { return n.AsBool(); });
}
absl::Status ConfigNode::Require(const std::string& key, std::vector<std::string>* out) const {
  absl::StatusOr<ConfigNode> child = Child(key);
  if (!child.ok()) return child.status();
  absl::StatusOr<std::vector<ConfigNode>> elements = child->Elements();
  if (!elements.ok()) return elements.status();
  std::vector<std::string> values;
  for (const ConfigNode& element : *elements) {
    absl::StatusOr<std::string> value = element.AsString();
    if (!value.ok()) return value.status();
    values.push_back(*value);
  }
  *out = std::move(values);
  return absl::OkStatus();
}

absl::Status ConfigNode::Read(const std::string& key, std::string* out) const {
  return Has(key) ? Require(key, out) : absl::OkStatus();
}
absl::Status ConfigNode::Read(const std::string& key, int* out) const {
  return Has(key) ? Require(key, out) : absl::OkStatus();
}
absl::Status ConfigNode::Read(const std::string& key, int64_t* out) const {
  return Has(key) ? Require(key, out) : absl::OkStatus();
}
absl::Status ConfigNode::Read(const std::string& key, double* out) const {
  return Has(key) ? Require(key, out) : absl::OkStatus();
}
absl::Status ConfigNode::Read(const std::string& key, bool* out) const {
  return Has(key) ? Require(key, out) : absl::OkStatus();
}
absl::Status ConfigNode::Read(const std::string& key, std::vector<std::string>* out) const {
  return Has(key) ? Require(key, out) : absl::OkStatus();
}

}  // namespace turbovid::common
