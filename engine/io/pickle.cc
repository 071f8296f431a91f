// Pickle VM for torch.save state dicts. Objects live in an arena owned by the VM and are never
// traversed recursively, so hostile nesting or memo cycles cannot exhaust the stack or leak;
// object, memo and stack counts are capped. The writer is pickle_writer.cc. Longer than 600
// lines, and StepScalar/StepStructure longer than 60, because they hold one short case per
// opcode: splitting the switch would scatter the VM's stack/mark invariants over files.
#include "engine/io/pickle.h"

#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine::io {
namespace {

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,
  kFloat,
  kStr,
  kBytes,
  kTuple,
  kList,
  kDict,
  kGlobal,
  kStorage,
  kTensor
};

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kStr:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

struct Value {
  Kind kind = Kind::kNone;
  int64_t i = 0;                                  // int, bool
  std::string s;                                  // str, bytes, global "module.name"
  std::vector<Value*> items;                      // tuple, list
  std::vector<std::pair<Value*, Value*>> pairs;   // dict, insertion order
  std::unordered_map<std::string, size_t> index;  // dict: str key → position in `pairs`
  Tensor tensor;                                  // storage [numel] or rebuilt tensor
};

// Caps that no real state dict approaches (a 14B DiT's data.pkl is ~150 KB, ~20 K objects).
constexpr size_t kMaxPickleBytes = size_t{64} << 20;
constexpr size_t kMaxObjects = size_t{1} << 20;
constexpr size_t kMaxStack = size_t{1} << 20;
constexpr size_t kMaxMemo = size_t{1} << 20;
constexpr int64_t kMaxElements = int64_t{1} << 48;
constexpr size_t kMaxRank = 32;

constexpr std::string_view kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr std::string_view kRebuildParameter = "torch._utils._rebuild_parameter";
constexpr std::string_view kRebuildParameterState = "torch._utils._rebuild_parameter_with_state";
constexpr std::string_view kOrderedDict = "collections.OrderedDict";

constexpr DType kStorageDTypes[] = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16,
                                    DType::kI8,  DType::kU8,  DType::kI32,  DType::kI64};

std::optional<DType> StorageDType(std::string_view global) {
  if (global.substr(0, 6) != "torch.") return std::nullopt;
  for (DType d : kStorageDTypes) {
    if (global.substr(6) == TorchStorageName(d)) return d;
  }
  return std::nullopt;
}

class Unpickler {
 public:
  Unpickler(std::string_view pkl, const std::string& file, const PickleStorageLoader& loader)
      : pkl_(pkl), file_(file), loader_(loader) {}

  absl::StatusOr<TensorMap> Run();

 private:
  absl::Status Fail(const std::string& why) const {
    return absl::DataLossError(
        absl::StrCat(file_, ": data.pkl offset ", op_pos_, ": ", why, NearbyKey()));
  }
  std::string NearbyKey() const;
  absl::StatusOr<std::string_view> Read(size_t n);
  absl::StatusOr<uint64_t> ReadLE(size_t n);
  absl::StatusOr<std::string_view> ReadLine();
  absl::StatusOr<Value*> New(Kind kind);
  absl::Status Push(Value* v);
  absl::StatusOr<Value*> Pop();
  absl::StatusOr<Value*> Top();
  absl::StatusOr<std::vector<Value*>> PopMark();
  absl::Status PushInt(int64_t v);
  absl::Status PushString(Kind kind, size_t len_bytes);
  absl::Status PushTuple(std::vector<Value*> items);
  absl::Status Put(uint64_t index);
  absl::Status Get(uint64_t index);
  absl::Status SetItems(const std::vector<Value*>& kv);
  absl::Status Appends(const std::vector<Value*>& items);
  absl::Status Global(std::string module, std::string_view name);
  absl::Status Reduce();
  absl::Status PersistentLoad();
  absl::Status Build();
  absl::StatusOr<Tensor> RebuildTensor(const Value& args);
  absl::StatusOr<Shape> IntTuple(const Value* v, const char* what);
  absl::StatusOr<bool> StepScalar(uint8_t op);
  absl::StatusOr<bool> StepStructure(uint8_t op);
  absl::StatusOr<TensorMap> Finish();

  std::string_view pkl_;
  const std::string& file_;
  const PickleStorageLoader& loader_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::map<std::string, Value*> storages_;
  bool stopped_ = false;
};

std::string Unpickler::NearbyKey() const {
  // In a state dict the tensor being built sits right above its key (SETITEMS: MARK k v k v).
  for (size_t n = 0; n < 4 && n < stack_.size(); ++n) {
    const Value* v = stack_[stack_.size() - 1 - n];
    if (v->kind == Kind::kStr) return absl::StrCat(" (tensor '", v->s, "')");
  }
  return "";
}

absl::StatusOr<std::string_view> Unpickler::Read(size_t n) {
  if (n > pkl_.size() - pos_) {
    return Fail(absl::StrCat("truncated: need ", n, " bytes, ", pkl_.size() - pos_, " left"));
  }
  std::string_view out = pkl_.substr(pos_, n);
  pos_ += n;
  return out;
}

absl::StatusOr<uint64_t> Unpickler::ReadLE(size_t n) {
  TV_ASSIGN_OR_RETURN(std::string_view b, Read(n));
  uint64_t v = 0;
  for (size_t k = 0; k < n; ++k) v |= uint64_t{static_cast<uint8_t>(b[k])} << (8 * k);
  return v;
}

absl::StatusOr<std::string_view> Unpickler::ReadLine() {
  size_t end = pkl_.find('\n', pos_);
  if (end == std::string_view::npos || end - pos_ > 256) return Fail("bad GLOBAL line");
  std::string_view line = pkl_.substr(pos_, end - pos_);
  pos_ = end + 1;
  return line;
}

absl::StatusOr<Value*> Unpickler::New(Kind kind) {
  if (arena_.size() >= kMaxObjects) return Fail("too many objects");
  arena_.push_back(std::make_unique<Value>());
  arena_.back()->kind = kind;
  return arena_.back().get();
}

absl::Status Unpickler::Push(Value* v) {
  if (stack_.size() >= kMaxStack) return Fail("stack too deep");
  stack_.push_back(v);
  return absl::OkStatus();
}

absl::StatusOr<Value*> Unpickler::Pop() {
  if (stack_.empty() || (!marks_.empty() && marks_.back() == stack_.size())) {
    return Fail("stack underflow");
  }
  Value* v = stack_.back();
  stack_.pop_back();
  return v;
}

absl::StatusOr<Value*> Unpickler::Top() {
  if (stack_.empty() || (!marks_.empty() && marks_.back() == stack_.size())) {
    return Fail("stack underflow");
  }
  return stack_.back();
}

absl::StatusOr<std::vector<Value*>> Unpickler::PopMark() {
  if (marks_.empty()) return Fail("no MARK on the stack");
  size_t m = marks_.back();
  marks_.pop_back();
  std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
  stack_.resize(m);
  return items;
}

absl::Status Unpickler::PushInt(int64_t v) {
  TV_ASSIGN_OR_RETURN(Value * x, New(Kind::kInt));
  x->i = v;
  return Push(x);
}

absl::Status Unpickler::PushString(Kind kind, size_t len_bytes) {
  TV_ASSIGN_OR_RETURN(uint64_t n, ReadLE(len_bytes));
  if (n > pkl_.size()) return Fail(absl::StrCat("string length ", n, " exceeds the pickle"));
  TV_ASSIGN_OR_RETURN(std::string_view s, Read(static_cast<size_t>(n)));
  TV_ASSIGN_OR_RETURN(Value * x, New(kind));
  x->s = std::string(s);
  return Push(x);
}

absl::Status Unpickler::PushTuple(std::vector<Value*> items) {
  TV_ASSIGN_OR_RETURN(Value * x, New(Kind::kTuple));
  x->items = std::move(items);
  return Push(x);
}

absl::Status Unpickler::Put(uint64_t index) {
  TV_ASSIGN_OR_RETURN(Value * top, Top());
  if (memo_.size() >= kMaxMemo && memo_.count(index) == 0) return Fail("memo too large");
  memo_[index] = top;
  return absl::OkStatus();
}

absl::Status Unpickler::Get(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end()) return Fail(absl::StrCat("memo ", index, " is unset"));
  return Push(it->second);
}

absl::Status Unpickler::SetItems(const std::vector<Value*>& kv) {
  if (kv.size() % 2 != 0) return Fail("SETITEMS with an odd number of items");
  TV_ASSIGN_OR_RETURN(Value * d, Top());
  if (d->kind != Kind::kDict) return Fail(absl::StrCat("SETITEM on a ", KindName(d->kind)));
  for (size_t k = 0; k < kv.size(); k += 2) {
    if (kv[k]->kind == Kind::kStr) {
      auto [it, inserted] = d->index.emplace(kv[k]->s, d->pairs.size());
      if (!inserted) {
        d->pairs[it->second].second = kv[k + 1];
        continue;
      }
    }
    d->pairs.emplace_back(kv[k], kv[k + 1]);
  }
  return absl::OkStatus();
}

absl::Status Unpickler::Appends(const std::vector<Value*>& items) {
  TV_ASSIGN_OR_RETURN(Value * l, Top());
  if (l->kind != Kind::kList) return Fail(absl::StrCat("APPEND to a ", KindName(l->kind)));
  l->items.insert(l->items.end(), items.begin(), items.end());
  return absl::OkStatus();
}

absl::Status Unpickler::Global(std::string module, std::string_view name) {
  std::string full = absl::StrCat(module, ".", std::string(name));
  bool known = full == kOrderedDict || full == kRebuildTensor || full == kRebuildParameter ||
               full == kRebuildParameterState || StorageDType(full).has_value();
  if (!known) return Fail(absl::StrCat("unsupported global '", full, "'"));
  TV_ASSIGN_OR_RETURN(Value * g, New(Kind::kGlobal));
  g->s = std::move(full);
  return Push(g);
}

absl::StatusOr<Shape> Unpickler::IntTuple(const Value* v, const char* what) {
  if (v->kind != Kind::kTuple && v->kind != Kind::kList) {
    return Fail(absl::StrCat(what, " is a ", KindName(v->kind), ", not a tuple"));
  }
  if (v->items.size() > kMaxRank) return Fail(absl::StrCat(what, " has too many dimensions"));
  Shape out;
  for (const Value* x : v->items) {
    if (x->kind != Kind::kInt || x->i < 0 || x->i > kMaxElements) {
      return Fail(absl::StrCat(what, " holds a non-integer or out-of-range entry"));
    }
    out.push_back(x->i);
  }
  return out;
}

absl::StatusOr<Tensor> Unpickler::RebuildTensor(const Value& args) {
  if (args.items.size() != 6 && args.items.size() != 7) {
    return Fail(absl::StrCat("_rebuild_tensor_v2 takes 6 or 7 arguments, got ", args.items.size()));
  }
  const Value* storage = args.items[0];
  if (storage->kind != Kind::kStorage)
    return Fail("_rebuild_tensor_v2: first argument is not a storage");
  if (args.items[1]->kind != Kind::kInt || args.items[1]->i < 0) return Fail("bad storage offset");
  const int64_t offset = args.items[1]->i;
  TV_ASSIGN_OR_RETURN(Shape size, IntTuple(args.items[2], "size"));
  TV_ASSIGN_OR_RETURN(Shape stride, IntTuple(args.items[3], "stride"));
  if (size.size() != stride.size()) return Fail("size and stride ranks differ");
  const Tensor& st = storage->tensor;
  const int64_t capacity = st.numel();
  int64_t numel = 1, last = offset;  // `last`: highest element index the view touches
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d] != 0 && numel > kMaxElements / size[d]) return Fail("tensor too large");
    numel *= size[d];
    if (size[d] > 0 && stride[d] > 0) {
      if (stride[d] > kMaxElements / size[d] || last > kMaxElements)
        return Fail("stride too large");
      last += (size[d] - 1) * stride[d];
    }
  }
  if (numel == 0) return Tensor::Zeros(st.dtype(), size);
  if (last >= capacity) {
    return Fail(absl::StrCat("view [offset ", offset, ", size ", ShapeString(size), ", stride ",
                             ShapeString(stride), "] exceeds storage of ", capacity, " elements"));
  }
  const size_t esize = DTypeSize(st.dtype());
  bool contiguous = true;
  for (int64_t d = static_cast<int64_t>(size.size()) - 1, expect = 1; d >= 0; --d) {
    if (size[d] != 1 && stride[d] != expect) contiguous = false;
    expect *= size[d];
  }
  if (contiguous) {
    return Tensor::Wrap(st.storage(), st.byte_offset() + static_cast<size_t>(offset) * esize,
                        st.dtype(), size);
  }
  // Strided view (e.g. a saved transpose): materialise. A view with more elements than its
  // storage must alias (stride 0 / overlap); refuse it rather than allocate without bound.
  if (numel > capacity) return Fail("overlapping strides (expanded view) are not supported");
  Tensor out = Tensor::Zeros(st.dtype(), size);
  std::vector<int64_t> idx(size.size(), 0);
  const char* src = static_cast<const char*>(st.raw());
  char* dst = static_cast<char*>(out.raw());
  for (int64_t n = 0; n < numel; ++n) {
    int64_t at = offset;
    for (size_t d = 0; d < size.size(); ++d) at += idx[d] * stride[d];
    std::memcpy(dst + n * esize, src + at * esize, esize);
    for (int64_t d = static_cast<int64_t>(size.size()) - 1; d >= 0 && ++idx[d] == size[d]; --d) {
      idx[d] = 0;
    }
  }
  return out;
}

absl::Status Unpickler::Reduce() {
  TV_ASSIGN_OR_RETURN(Value * args, Pop());
  TV_ASSIGN_OR_RETURN(Value * fn, Pop());
  if (fn->kind != Kind::kGlobal) return Fail(absl::StrCat("REDUCE on a ", KindName(fn->kind)));
  if (args->kind != Kind::kTuple) return Fail("REDUCE arguments are not a tuple");
  if (fn->s == kOrderedDict) {
    if (!args->items.empty()) return Fail("OrderedDict with arguments");
    TV_ASSIGN_OR_RETURN(Value * d, New(Kind::kDict));
    return Push(d);
  }
  if (fn->s == kRebuildTensor) {
    TV_ASSIGN_OR_RETURN(Tensor t, RebuildTensor(*args));
    TV_ASSIGN_OR_RETURN(Value * v, New(Kind::kTensor));
    v->tensor = std::move(t);
    return Push(v);
  }
  if (fn->s == kRebuildParameter || fn->s == kRebuildParameterState) {
    size_t want = fn->s == kRebuildParameter ? 3 : 4;
    if (args->items.size() != want || args->items[0]->kind != Kind::kTensor) {
      return Fail(absl::StrCat(fn->s, ": bad arguments"));
    }
    return Push(args->items[0]);
  }
  return Fail(absl::StrCat("cannot call '", fn->s, "'"));
}

absl::Status Unpickler::PersistentLoad() {
  TV_ASSIGN_OR_RETURN(Value * pid, Pop());
  const auto& it = pid->items;
  if (pid->kind != Kind::kTuple || it.size() != 5 || it[0]->kind != Kind::kStr ||
      it[0]->s != "storage" || it[1]->kind != Kind::kGlobal || it[2]->kind != Kind::kStr ||
      it[3]->kind != Kind::kStr || it[4]->kind != Kind::kInt) {
    return Fail("persistent id is not ('storage', type, key, location, numel)");
  }
  std::optional<DType> dtype = StorageDType(it[1]->s);
  if (!dtype) return Fail(absl::StrCat("'", it[1]->s, "' is not a storage type"));
  PickleStorageRef ref{*dtype, it[2]->s, it[3]->s, it[4]->i};
  if (ref.numel < 0 || ref.numel > kMaxElements) return Fail("bad storage size");
  auto cached = storages_.find(ref.key);
  if (cached != storages_.end()) {
    const Tensor& t = cached->second->tensor;
    if (t.dtype() != ref.dtype || t.numel() != ref.numel) {
      return Fail(absl::StrCat("storage '", ref.key, "' is declared twice with different types"));
    }
    return Push(cached->second);
  }
  auto loaded = loader_(ref);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat(loaded.status().message(), NearbyKey()));
  }
  if (loaded->dtype() != ref.dtype || loaded->numel() != ref.numel) {
    return Fail(absl::StrCat("storage '", ref.key, "' loaded with the wrong size"));
  }
  TV_ASSIGN_OR_RETURN(Value * v, New(Kind::kStorage));
  v->tensor = *std::move(loaded);
  storages_.emplace(ref.key, v);
  return Push(v);
}

absl::Status Unpickler::Build() {
  TV_ASSIGN_OR_RETURN(Value * state, Pop());
  TV_ASSIGN_OR_RETURN(Value * obj, Top());
  (void)state;  // a dict's state is its `_metadata` attribute (module versions): not needed
  if (obj->kind != Kind::kDict && obj->kind != Kind::kTensor) {
    return Fail(absl::StrCat("BUILD on a ", KindName(obj->kind)));
  }
  return absl::OkStatus();
}

// Constants, strings and memo. Returns false for opcodes it does not handle.
absl::StatusOr<bool> Unpickler::StepScalar(uint8_t op) {
  switch (op) {
    case 0x80:
      TV_RETURN_IF_ERROR(ReadLE(1).status());
      return true;  // PROTO
    case 0x95:
      TV_RETURN_IF_ERROR(ReadLE(8).status());
      return true;  // FRAME
    case 'N': {
      TV_ASSIGN_OR_RETURN(Value * none, New(Kind::kNone));
      TV_RETURN_IF_ERROR(Push(none));
      return true;
    }
    case 0x88:
    case 0x89: {  // NEWTRUE, NEWFALSE
      TV_ASSIGN_OR_RETURN(Value * b, New(Kind::kBool));
      b->i = op == 0x88;
      TV_RETURN_IF_ERROR(Push(b));
      return true;
    }
    case 'K': {
      TV_ASSIGN_OR_RETURN(uint64_t v, ReadLE(1));
      TV_RETURN_IF_ERROR(PushInt(v));
      return true;
    }
    case 'M': {
      TV_ASSIGN_OR_RETURN(uint64_t v, ReadLE(2));
      TV_RETURN_IF_ERROR(PushInt(v));
      return true;
    }
    case 'J': {
      TV_ASSIGN_OR_RETURN(uint64_t v, ReadLE(4));
      TV_RETURN_IF_ERROR(PushInt(static_cast<int32_t>(static_cast<uint32_t>(v))));
      return true;
    }
    case 0x8a: {  // LONG1: little-endian two's complement of n <= 8 bytes
      TV_ASSIGN_OR_RETURN(uint64_t n, ReadLE(1));
      if (n > 8) return Fail("LONG1 wider than 64 bits");
      TV_ASSIGN_OR_RETURN(uint64_t v, ReadLE(n));
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);
      TV_RETURN_IF_ERROR(PushInt(static_cast<int64_t>(v)));
      return true;
    }
    case 'G': {  // BINFLOAT: big-endian IEEE double; kept for completeness, value unused
      TV_RETURN_IF_ERROR(Read(8).status());
      TV_ASSIGN_OR_RETURN(Value * f, New(Kind::kFloat));
      TV_RETURN_IF_ERROR(Push(f));
      return true;
    }
    case 'X':
      TV_RETURN_IF_ERROR(PushString(Kind::kStr, 4));
      return true;  // BINUNICODE
    case 0x8c:
      TV_RETURN_IF_ERROR(PushString(Kind::kStr, 1));
      return true;  // SHORT_BINUNICODE
    case 0x8d:
      TV_RETURN_IF_ERROR(PushString(Kind::kStr, 8));
      return true;  // BINUNICODE8
    case 'T':
      TV_RETURN_IF_ERROR(PushString(Kind::kStr, 4));
      return true;  // BINSTRING
    case 'U':
      TV_RETURN_IF_ERROR(PushString(Kind::kStr, 1));
      return true;  // SHORT_BINSTRING
    case 'B':
      TV_RETURN_IF_ERROR(PushString(Kind::kBytes, 4));
      return true;  // BINBYTES
    case 'C':
      TV_RETURN_IF_ERROR(PushString(Kind::kBytes, 1));
      return true;  // SHORT_BINBYTES
    case 'q': {
      TV_ASSIGN_OR_RETURN(uint64_t i, ReadLE(1));
      TV_RETURN_IF_ERROR(Put(i));
      return true;
    }
    case 'r': {
      TV_ASSIGN_OR_RETURN(uint64_t i, ReadLE(4));
      TV_RETURN_IF_ERROR(Put(i));
      return true;
    }
    case 0x94:
      TV_RETURN_IF_ERROR(Put(memo_.size()));
      return true;  // MEMOIZE
    case 'h': {
      TV_ASSIGN_OR_RETURN(uint64_t i, ReadLE(1));
      TV_RETURN_IF_ERROR(Get(i));
      return true;
    }
    case 'j': {
      TV_ASSIGN_OR_RETURN(uint64_t i, ReadLE(4));
      TV_RETURN_IF_ERROR(Get(i));
      return true;
    }
  }
  return false;
}

// Containers, calls and control. Returns false for opcodes it does not handle.
absl::StatusOr<bool> Unpickler::StepStructure(uint8_t op) {
  switch (op) {
    case '.':
      stopped_ = true;
      return true;  // STOP
    case '(':       // MARK
      if (marks_.size() >= kMaxStack) return Fail("too many MARKs");
      marks_.push_back(stack_.size());
      return true;
    case '0': {  // POP (a MARK on top is popped as the mark)
      if (!marks_.empty() && marks_.back() == stack_.size()) {
        marks_.pop_back();
      } else {
        TV_RETURN_IF_ERROR(Pop().status());
      }
      return true;
    }
    case '1':
      TV_RETURN_IF_ERROR(PopMark().status());
      return true;  // POP_MARK
    case '2': {
      TV_ASSIGN_OR_RETURN(Value * t, Top());
      TV_RETURN_IF_ERROR(Push(t));
      return true;
    }
    case ')':
      TV_RETURN_IF_ERROR(PushTuple({}));
      return true;
    case ']':
    case '}': {  // EMPTY_LIST, EMPTY_DICT
      TV_ASSIGN_OR_RETURN(Value * c, New(op == ']' ? Kind::kList : Kind::kDict));
      TV_RETURN_IF_ERROR(Push(c));
      return true;
    }
    case 't': {
      TV_ASSIGN_OR_RETURN(auto items, PopMark());
      TV_RETURN_IF_ERROR(PushTuple(std::move(items)));
      return true;
    }
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      std::vector<Value*> items(op - 0x84);
      for (size_t k = items.size(); k-- > 0;) {
        TV_ASSIGN_OR_RETURN(items[k], Pop());
      }
      TV_RETURN_IF_ERROR(PushTuple(std::move(items)));
      return true;
    }
    case 'l':
    case 'd': {  // LIST, DICT from the items above the mark
      TV_ASSIGN_OR_RETURN(auto items, PopMark());
      TV_ASSIGN_OR_RETURN(Value * c, New(op == 'l' ? Kind::kList : Kind::kDict));
      TV_RETURN_IF_ERROR(Push(c));
      TV_RETURN_IF_ERROR(op == 'l' ? Appends(items) : SetItems(items));
      return true;
    }
    case 'a': {
      TV_ASSIGN_OR_RETURN(Value * v, Pop());
      TV_RETURN_IF_ERROR(Appends({v}));
      return true;
    }
    case 'e': {
      TV_ASSIGN_OR_RETURN(auto items, PopMark());
      TV_RETURN_IF_ERROR(Appends(items));
      return true;
    }
    case 's': {
      TV_ASSIGN_OR_RETURN(Value * v, Pop());
      TV_ASSIGN_OR_RETURN(Value * k, Pop());
      TV_RETURN_IF_ERROR(SetItems({k, v}));
      return true;
    }
    case 'u': {
      TV_ASSIGN_OR_RETURN(auto kv, PopMark());
      TV_RETURN_IF_ERROR(SetItems(kv));
      return true;
    }
    case 'c': {  // GLOBAL "module\nname\n"
      TV_ASSIGN_OR_RETURN(std::string_view module, ReadLine());
      TV_ASSIGN_OR_RETURN(std::string_view name, ReadLine());
      TV_RETURN_IF_ERROR(Global(std::string(module), name));
      return true;
    }
    case 0x93: {  // STACK_GLOBAL
      TV_ASSIGN_OR_RETURN(Value * name, Pop());
      TV_ASSIGN_OR_RETURN(Value * module, Pop());
      if (name->kind != Kind::kStr || module->kind != Kind::kStr) return Fail("bad STACK_GLOBAL");
      TV_RETURN_IF_ERROR(Global(module->s, name->s));
      return true;
    }
    case 'R':
      TV_RETURN_IF_ERROR(Reduce());
      return true;
    case 'Q':
      TV_RETURN_IF_ERROR(PersistentLoad());
      return true;  // BINPERSID
    case 'b':
      TV_RETURN_IF_ERROR(Build());
      return true;
  }
  return false;
}

absl::StatusOr<TensorMap> Unpickler::Finish() {
  if (stack_.size() != 1 || !marks_.empty()) {
    return Fail(absl::StrCat("STOP with ", stack_.size(), " objects and ", marks_.size(),
                             " marks on the stack"));
  }
  const Value* d = stack_.back();
  if (d->kind != Kind::kDict) {
    return Fail(absl::StrCat("top-level object is a ", KindName(d->kind), ", not a state dict"));
  }
  TensorMap out;
  for (const auto& [k, v] : d->pairs) {
    if (k->kind != Kind::kStr) return Fail("state dict key is not a string");
    if (v->kind != Kind::kTensor) {
      return Fail(absl::StrCat("entry '", k->s, "' is a ", KindName(v->kind), ", not a tensor"));
    }
    out.emplace(k->s, v->tensor);
  }
  return out;
}

absl::StatusOr<TensorMap> Unpickler::Run() {
  if (pkl_.size() > kMaxPickleBytes) return Fail("data.pkl larger than 64 MiB");
  while (!stopped_) {
    op_pos_ = pos_;
    if (pos_ >= pkl_.size()) return Fail("truncated: no STOP opcode");
    const uint8_t op = static_cast<uint8_t>(pkl_[pos_++]);
    TV_ASSIGN_OR_RETURN(bool handled, StepScalar(op));
    if (handled) continue;
    TV_ASSIGN_OR_RETURN(handled, StepStructure(op));
    if (!handled) return Fail(absl::StrCat("unsupported opcode 0x", absl::Hex(op)));
  }
  return Finish();
}

}  // namespace

std::string_view TorchStorageName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "FloatStorage";
    case DType::kF64:
      return "DoubleStorage";
    case DType::kBF16:
      return "BFloat16Storage";
    case DType::kF16:
      return "HalfStorage";
    case DType::kI8:
      return "CharStorage";
    case DType::kU8:
      return "ByteStorage";
    case DType::kI32:
      return "IntStorage";
    case DType::kI64:
      return "LongStorage";
  }
  return "?";
}

absl::StatusOr<TensorMap> UnpickleStateDict(std::string_view pkl, const std::string& file,
                                            const PickleStorageLoader& loader) {
  Unpickler vm(pkl, file, loader);
  return vm.Run();
}

}  // namespace turbovid::engine::io
