// Typed, error-naming access to YAML config files (yaml-cpp inside; nothing here throws).
// Errors read "configs/scheduler.yaml:12: admission.max_prompt_bytes: expected an integer, got
// 'x'".
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace turbovid::common {

// A node of a parsed YAML document plus its dotted path, for messages. Cheap to copy.
class ConfigNode {
 public:
  // Parses a file; NotFound if it cannot be read, InvalidArgument on a YAML syntax error.
  static absl::StatusOr<ConfigNode> LoadFile(const std::string& path);
  // Parses text; `source` names it in messages.
  static absl::StatusOr<ConfigNode> LoadString(const std::string& text,
                                               const std::string& source = "<string>");

  bool IsMap() const;
  bool IsSequence() const;
  bool IsNull() const;  // missing or `~`
  bool Has(const std::string& key) const;
  // Keys of a map node in file order; empty for any other node.
  std::vector<std::string> Keys() const;

  // Child of a map; InvalidArgument naming the key when it is missing (or this is no map).
  absl::StatusOr<ConfigNode> Child(const std::string& key) const;
  // Elements of a sequence; InvalidArgument when this is no sequence.
  absl::StatusOr<std::vector<ConfigNode>> Elements() const;

  // Required: InvalidArgument naming the key when missing or of the wrong type.
  absl::Status Require(const std::string& key, std::string* out) const;
  absl::Status Require(const std::string& key, int* out) const;
  absl::Status Require(const std::string& key, int64_t* out) const;
  absl::Status Require(const std::string& key, double* out) const;
  absl::Status Require(const std::string& key, bool* out) const;
  absl::Status Require(const std::string& key, std::vector<std::string>* out) const;
  // Optional: leaves *out (its default) untouched when the key is missing; wrong type is an error.
  absl::Status Read(const std::string& key, std::string* out) const;
  absl::Status Read(const std::string& key, int* out) const;
  absl::Status Read(const std::string& key, int64_t* out) const;
  absl::Status Read(const std::string& key, double* out) const;
  absl::Status Read(const std::string& key, bool* out) const;
  absl::Status Read(const std::string& key, std::vector<std::string>* out) const;

  // The value of a scalar node itself (for elements of sequences).
  absl::StatusOr<std::string> AsString() const;
  absl::StatusOr<int64_t> AsInt() const;
  absl::StatusOr<double> AsDouble() const;
  absl::StatusOr<bool> AsBool() const;

  // InvalidArgument naming the first key of this map that is not in `known` (catches typos).
  absl::Status CheckKeys(std::initializer_list<const char*> known) const;

  // "scheduler.yaml:12: lease_seconds: <what>" as InvalidArgument.
  absl::Status Error(const std::string& what) const;
  const std::string& path() const { return path_; }
  const std::string& source() const { return source_; }

 private:
  ConfigNode(std::shared_ptr<const YAML::Node> node, std::string source, std::string path);
  std::string Where() const;  // "source:line: path"
  std::string ChildPath(const std::string& key) const;

  std::shared_ptr<const YAML::Node> node_;
  std::string source_;
  std::string path_;  // dotted, "" for the document root
};

}  // namespace turbovid::common
