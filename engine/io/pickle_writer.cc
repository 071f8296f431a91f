// torch.save data.pkl writer (protocol 2): an OrderedDict of _rebuild_tensor_v2 calls.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/io/pickle.h"

namespace turbovid::engine::io {
namespace {

// Emits protocol-2 opcodes; globals and repeated strings are memoised like CPython's pickler.
class PickleWriter {
 public:
  std::string& out() { return out_; }
  void Op(char op) { out_ += op; }
  void Uint(uint64_t v, int bytes) {
    for (int k = 0; k < bytes; ++k) out_ += static_cast<char>((v >> (8 * k)) & 0xff);
  }
  void Int(int64_t v) {
    if (v >= 0 && v < 256) {
      Op('K'), Uint(v, 1);
    } else if (v >= 0 && v < 65536) {
      Op('M'), Uint(v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      Op('J'), Uint(static_cast<uint32_t>(v), 4);
    } else {
      Op('\x8a'), Uint(8, 1), Uint(static_cast<uint64_t>(v), 8);  // LONG1, 8 bytes
    }
  }
  void Str(const std::string& s) { Op('X'), Uint(s.size(), 4), out_ += s; }
  // Writes `emit` once and memoises it under `key`; later uses are BINGET/LONG_BINGET.
  template <typename F>
  void Memo(const std::string& key, F emit) {
    auto it = memo_.find(key);
    if (it != memo_.end()) {
      if (it->second < 256)
        Op('h'), Uint(it->second, 1);
      else
        Op('j'), Uint(it->second, 4);
      return;
    }
    emit();
    const uint64_t id = memo_.size();
    memo_.emplace(key, id);
    if (id < 256)
      Op('q'), Uint(id, 1);
    else
      Op('r'), Uint(id, 4);
  }
  void Global(const std::string& module, const std::string& name) {
    Memo(absl::StrCat("g:", module, ".", name),
         [&] { out_ += absl::StrCat("c", module, "\n", name, "\n"); });
  }
  void Tuple(const std::vector<int64_t>& v) {
    if (v.empty()) return Op(')');
    if (v.size() > 3) Op('(');
    for (int64_t x : v) Int(x);
    Op(v.size() == 1 ? '\x85' : v.size() == 2 ? '\x86' : v.size() == 3 ? '\x87' : 't');
  }
  void OrderedDict() {  // collections.OrderedDict()
    Global("collections", "OrderedDict");
    Op(')'), Op('R');
  }

 private:
  std::string out_;
  std::map<std::string, uint64_t> memo_;
};

}  // namespace

absl::StatusOr<std::string> PickleStateDict(const TensorMap& tensors) {
  PickleWriter w;
  w.Op('\x80'), w.Uint(2, 1);  // PROTO 2
  w.OrderedDict();
  size_t key = 0;
  for (auto it = tensors.begin(); it != tensors.end();) {
    w.Op('(');  // SETITEMS in batches of 1000, as CPython does
    for (int batch = 0; batch < 1000 && it != tensors.end(); ++batch, ++it, ++key) {
      const auto& [name, t] = *it;
      if (t.defined() && t.device() != Device::kCpu) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' is not on the host"));
      }
      w.Str(name);
      w.Global("torch._utils", "_rebuild_tensor_v2");
      w.Op('('), w.Op('(');
      w.Memo("s:storage", [&] { w.Str("storage"); });
      w.Global("torch", std::string(TorchStorageName(t.dtype())));
      w.Str(std::to_string(key));
      w.Memo("s:cpu", [&] { w.Str("cpu"); });
      w.Int(t.numel());
      w.Op('t'), w.Op('Q');  // persistent id tuple, BINPERSID
      w.Int(0);
      Shape stride(t.shape().size());
      for (int64_t d = static_cast<int64_t>(stride.size()) - 1, s = 1; d >= 0; --d) {
        stride[d] = s;
        s *= t.shape()[d];
      }
      w.Tuple(t.shape());
      w.Tuple(stride);
      w.Op('\x89');     // requires_grad=False
      w.OrderedDict();  // backward_hooks
      w.Op('t'), w.Op('R');
    }
    w.Op('u');
  }
  w.Op('}'), w.Str("_metadata"), w.OrderedDict(), w.Op('s'), w.Op('b'), w.Op('.');
  return std::move(w.out());
}

}  // namespace turbovid::engine::io
