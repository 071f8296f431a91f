// Socket communicator: connection set-up over abstract Unix sockets, a poll-driven exchange of
// framed parts with several peers at once, and the collectives written over that exchange.
#include "engine/comm/socket_communicator.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine::comm {
namespace {

constexpr uint32_t kMagic = 0x54564331;  // "TVC1"

enum OpCode : uint32_t {
  kHello = 1,
  kAllReduce,
  kAllGather,
  kReduceScatter,
  kAllToAll,
  kBroadcast,
  kBarrier,
  kSplit
};

struct Header {
  uint32_t magic = kMagic;
  uint32_t op = 0;
  uint64_t bytes = 0;
};
static_assert(sizeof(Header) == 16);

using Clock = std::chrono::steady_clock;

// The sockets to every other process of the world group, shared by the groups split from it.
struct Links {
  int world_rank = 0;
  std::vector<int> fds;  // by world rank; -1 for ourselves
  std::atomic<bool> aborted{false};
  ~Links() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
};

std::string Errno(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

// One peer's part of an exchange: an optional framed send and an optional framed receive.
struct Transfer {
  int peer = -1;  // world rank
  bool send = false;
  const char* send_data = nullptr;
  uint64_t send_bytes = 0;
  bool recv = false;
  char* recv_data = nullptr;
  uint64_t recv_bytes = 0;
  // Progress.
  Header send_header;
  uint64_t sent = 0;  // over header + payload
  Header recv_header;
  uint64_t received = 0;
};

// Sends what is ready of t's frame; false once the peer is gone.
absl::Status PumpSend(int fd, Transfer& t) {
  const uint64_t total = sizeof(Header) + t.send_bytes;
  while (t.sent < total) {
    const char* p;
    size_t n;
    if (t.sent < sizeof(Header)) {
      p = reinterpret_cast<const char*>(&t.send_header) + t.sent;
      n = sizeof(Header) - t.sent;
    } else {
      p = t.send_data + (t.sent - sizeof(Header));
      n = std::min<uint64_t>(total - t.sent, 1 << 22);
    }
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      if (errno == EINTR) continue;
      return absl::UnavailableError(
          absl::StrCat("socket comm: rank ", t.peer, " is gone (", Errno("send"), ")"));
    }
    t.sent += static_cast<uint64_t>(k);
  }
  return absl::OkStatus();
}

absl::Status PumpRecv(int fd, Transfer& t, uint32_t op) {
  while (true) {
    char* p;
    size_t n;
    if (t.received < sizeof(Header)) {
      p = reinterpret_cast<char*>(&t.recv_header) + t.received;
      n = sizeof(Header) - t.received;
    } else {
      const uint64_t total = sizeof(Header) + t.recv_bytes;
      if (t.received >= total) return absl::OkStatus();
      p = t.recv_data + (t.received - sizeof(Header));
      n = std::min<uint64_t>(total - t.received, 1 << 22);
    }
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k == 0) {
      return absl::UnavailableError(
          absl::StrCat("socket comm: rank ", t.peer, " closed the connection (exited?)"));
    }
    if (k < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
      if (errno == EINTR) continue;
      return absl::UnavailableError(
          absl::StrCat("socket comm: rank ", t.peer, " is gone (", Errno("recv"), ")"));
    }
    const bool header_was_partial = t.received < sizeof(Header);
    t.received += static_cast<uint64_t>(k);
    if (header_was_partial && t.received >= sizeof(Header)) {
      const Header& h = t.recv_header;
      if (h.magic != kMagic || h.op != op || h.bytes != t.recv_bytes) {
        return absl::InternalError(absl::StrCat("socket comm: rank ", t.peer, " sent collective ",
                                                h.op, " of ", h.bytes, " bytes where collective ",
                                                op, " of ", t.recv_bytes, " bytes was expected"));
      }
    }
  }
}

bool SendDone(const Transfer& t) { return !t.send || t.sent == sizeof(Header) + t.send_bytes; }
bool RecvDone(const Transfer& t) { return !t.recv || t.received == sizeof(Header) + t.recv_bytes; }

// Runs every transfer to completion, all peers at once.
absl::Status Exchange(Links& links, std::vector<Transfer>& ts, uint32_t op) {
  for (Transfer& t : ts) {
    t.send_header.op = op;
    t.send_header.bytes = t.send_bytes;
  }
  std::vector<pollfd> fds;
  std::vector<Transfer*> order;
  while (true) {
    if (links.aborted.load()) return absl::UnavailableError("socket comm: aborted");
    fds.clear();
    order.clear();
    for (Transfer& t : ts) {
      const short events = (SendDone(t) ? 0 : POLLOUT) | (RecvDone(t) ? 0 : POLLIN);
      if (events == 0) continue;
      fds.push_back(pollfd{links.fds[t.peer], events, 0});
      order.push_back(&t);
    }
    if (fds.empty()) return absl::OkStatus();
    const int n = poll(fds.data(), fds.size(), 1000);
    if (n < 0 && errno != EINTR) return absl::InternalError(Errno("socket comm: poll"));
    if (n <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Transfer& t = *order[i];
      if (links.aborted.load()) return absl::UnavailableError("socket comm: aborted");
      if (!RecvDone(t)) TV_RETURN_IF_ERROR(PumpRecv(fds[i].fd, t, op));
      if (!SendDone(t)) TV_RETURN_IF_ERROR(PumpSend(fds[i].fd, t));
      if ((fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0 && !RecvDone(t)) {
        // Nothing left to read (PumpRecv read until EAGAIN) and the peer hung up.
        TV_RETURN_IF_ERROR(PumpRecv(fds[i].fd, t, op));
        if (!RecvDone(t)) {
          return absl::UnavailableError(absl::StrCat("socket comm: rank ", t.peer, " hung up"));
        }
      }
    }
  }
}

class SocketCommunicator : public Communicator {
 public:
  SocketCommunicator(std::shared_ptr<Links> links, std::vector<int> members, int rank)
      : links_(std::move(links)), members_(std::move(members)), rank_(rank) {}

  std::string_view kind() const override { return "socket"; }
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(members_.size()); }

  absl::Status AllReduceSum(Tensor& x) override {
    TV_RETURN_IF_ERROR(internal::CheckTensor("all_reduce", "x", x));
    TV_RETURN_IF_ERROR(internal::CheckOnHost("all_reduce", x));
    TV_RETURN_IF_ERROR(internal::CheckSumDType("all_reduce", x, /*host=*/true));
    const uint64_t bytes = x.nbytes();
    std::vector<char> all(bytes * size());
    TV_RETURN_IF_ERROR(GatherBytes(static_cast<const char*>(x.raw()), bytes, all.data(),
                                   std::vector<uint64_t>(size(), bytes), kAllReduce));
    std::vector<const void*> parts;
    for (int r = 0; r < size(); ++r) parts.push_back(all.data() + r * bytes);
    internal::SumInRankOrder(x.dtype(), parts, x.numel(), x.raw());
    return absl::OkStatus();
  }

  absl::Status AllGatherV(const Tensor& in, Tensor& out,
                          const std::vector<int64_t>& counts) override {
    TV_RETURN_IF_ERROR(internal::CheckAllGatherV(*this, in, out, counts));
    TV_RETURN_IF_ERROR(internal::CheckOnHost("all_gather", in));
    TV_RETURN_IF_ERROR(internal::CheckOnHost("all_gather", out));
    const size_t es = DTypeSize(in.dtype());
    std::vector<uint64_t> bytes;
    for (int64_t c : counts) bytes.push_back(static_cast<uint64_t>(c) * es);
    return GatherBytes(static_cast<const char*>(in.raw()), bytes[rank_],
                       static_cast<char*>(out.raw()), bytes, kAllGather);
  }

  absl::Status ReduceScatterSum(const Tensor& in, Tensor& out) override {
    TV_RETURN_IF_ERROR(internal::CheckReduceScatter(*this, in, out));
    TV_RETURN_IF_ERROR(internal::CheckOnHost("reduce_scatter", in));
    TV_RETURN_IF_ERROR(internal::CheckOnHost("reduce_scatter", out));
    TV_RETURN_IF_ERROR(internal::CheckSumDType("reduce_scatter", in, /*host=*/true));
    const uint64_t part = out.nbytes();
    const char* src = static_cast<const char*>(in.raw());
    std::vector<char> mine(part * size());
    std::vector<Transfer> ts;
    for (int r = 0; r < size(); ++r) {
      if (r == rank_) {
        std::memcpy(mine.data() + r * part, src + r * part, part);
        continue;
      }
      Transfer t;
      t.peer = members_[r];
      t.send = t.recv = true;
      t.send_data = src + r * part;
      t.send_bytes = part;
      t.recv_data = mine.data() + r * part;
      t.recv_bytes = part;
      ts.push_back(t);
    }
    TV_RETURN_IF_ERROR(Exchange(*links_, ts, kReduceScatter));
    std::vector<const void*> parts;
    for (int r = 0; r < size(); ++r) parts.push_back(mine.data() + r * part);
    internal::SumInRankOrder(in.dtype(), parts, out.numel(), out.raw());
    return absl::OkStatus();
  }

  absl::Status AllToAllV(const Tensor& in, const std::vector<int64_t>& send_counts, Tensor& out,
                         const std::vector<int64_t>& recv_counts) override {
    TV_RETURN_IF_ERROR(internal::CheckAllToAllV(*this, in, send_counts, out, recv_counts));
    TV_RETURN_IF_ERROR(internal::CheckOnHost("all_to_all", in));
    TV_RETURN_IF_ERROR(internal::CheckOnHost("all_to_all", out));
    const uint64_t es = DTypeSize(in.dtype());
    const std::vector<int64_t> soff = internal::Offsets(send_counts);
    const std::vector<int64_t> roff = internal::Offsets(recv_counts);
    const char* src = static_cast<const char*>(in.raw());
    char* dst = static_cast<char*>(out.raw());
    std::vector<Transfer> ts;
    for (int r = 0; r < size(); ++r) {
      if (r == rank_) {
        if (send_counts[r] != recv_counts[r]) {
          return absl::InvalidArgumentError(absl::StrCat("all_to_all: rank ", r, " sends ",
                                                         send_counts[r], " to itself, expects ",
                                                         recv_counts[r]));
        }
        std::memcpy(dst + roff[r] * es, src + soff[r] * es, recv_counts[r] * es);
        continue;
      }
      Transfer t;
      t.peer = members_[r];
      t.send = t.recv = true;
      t.send_data = src + soff[r] * es;
      t.send_bytes = send_counts[r] * es;
      t.recv_data = dst + roff[r] * es;
      t.recv_bytes = recv_counts[r] * es;
      ts.push_back(t);
    }
    return Exchange(*links_, ts, kAllToAll);
  }

  absl::Status Broadcast(Tensor& x, int root) override {
    TV_RETURN_IF_ERROR(internal::CheckTensor("broadcast", "x", x));
    TV_RETURN_IF_ERROR(internal::CheckOnHost("broadcast", x));
    TV_RETURN_IF_ERROR(internal::CheckRoot(*this, root));
    std::vector<Transfer> ts;
    for (int r = 0; r < size(); ++r) {
      if (r == rank_ || (rank_ != root && r != root)) continue;
      Transfer t;
      t.peer = members_[r];
      if (rank_ == root) {
        t.send = true;
        t.send_data = static_cast<const char*>(x.raw());
        t.send_bytes = x.nbytes();
      } else {
        t.recv = true;
        t.recv_data = static_cast<char*>(x.raw());
        t.recv_bytes = x.nbytes();
      }
      ts.push_back(t);
    }
    return Exchange(*links_, ts, kBroadcast);
  }

  absl::Status Barrier() override {
    char token = 1;
    std::vector<char> all(size());
    return GatherBytes(&token, 1, all.data(), std::vector<uint64_t>(size(), 1), kBarrier);
  }

  absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key) override {
    const int64_t mine[2] = {color, key};
    std::vector<int64_t> all(2 * size());
    TV_RETURN_IF_ERROR(GatherBytes(reinterpret_cast<const char*>(mine), sizeof(mine),
                                   reinterpret_cast<char*>(all.data()),
                                   std::vector<uint64_t>(size(), sizeof(mine)), kSplit));
    std::vector<std::pair<int64_t, int>> order;  // (key, group rank) of our color
    for (int r = 0; r < size(); ++r) {
      if (all[2 * r] == color) order.emplace_back(all[2 * r + 1], r);
    }
    std::sort(order.begin(), order.end());
    std::vector<int> members;
    int new_rank = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i].second == rank_) new_rank = static_cast<int>(i);
      members.push_back(members_[order[i].second]);
    }
    return std::unique_ptr<Communicator>(
        std::make_unique<SocketCommunicator>(links_, std::move(members), new_rank));
  }

  void Abort() override {
    links_->aborted.store(true);
    for (int fd : links_->fds) {
      if (fd >= 0) shutdown(fd, SHUT_RDWR);  // wakes a poll in the rank's thread
    }
  }

 private:
  // Every rank's `mine` (bytes[r] from rank r) into `out`, concatenated in rank order.
  absl::Status GatherBytes(const char* mine, uint64_t my_bytes, char* out,
                           const std::vector<uint64_t>& bytes, uint32_t op) {
    uint64_t offset = 0;
    std::vector<Transfer> ts;
    for (int r = 0; r < size(); ++r) {
      if (r == rank_) {
        std::memcpy(out + offset, mine, my_bytes);
      } else {
        Transfer t;
        t.peer = members_[r];
        t.send = t.recv = true;
        t.send_data = mine;
        t.send_bytes = my_bytes;
        t.recv_data = out + offset;
        t.recv_bytes = bytes[r];
        ts.push_back(t);
      }
      offset += bytes[r];
    }
    return Exchange(*links_, ts, op);
  }

  std::shared_ptr<Links> links_;
  std::vector<int> members_;  // world rank of each group rank
  const int rank_;
};

// sockaddr for "@turbovid-comm/<name>/<rank>" (leading NUL: the abstract namespace).
socklen_t Address(const std::string& name, int rank, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  const std::string path = absl::StrCat("turbovid-comm/", name, "/", rank);
  std::memcpy(addr->sun_path + 1, path.data(), path.size());
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + path.size());
}

// Blocking I/O of a whole small message with a deadline (set-up only).
absl::Status IoAll(int fd, char* p, size_t n, bool write, Clock::time_point deadline) {
  while (n > 0) {
    pollfd pfd{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return absl::DeadlineExceededError("socket comm: set-up timed out");
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t k = write ? ::send(fd, p, n, MSG_NOSIGNAL) : ::recv(fd, p, n, 0);
    if (k == 0) return absl::UnavailableError("socket comm: peer closed during set-up");
    if (k < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return absl::UnavailableError(Errno("socket comm: set-up"));
    }
    p += k;
    n -= static_cast<size_t>(k);
  }
  return absl::OkStatus();
}

// A peer under another user id could be anything: refuse it.
absl::Status CheckPeerUser(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::InternalError(Errno("socket comm: SO_PEERCRED"));
  }
  if (cred.uid != getuid()) {
    return absl::PermissionDeniedError(
        absl::StrCat("socket comm: peer pid ", cred.pid, " runs as uid ", cred.uid));
  }
  return absl::OkStatus();
}

struct Hello {
  uint32_t magic = kMagic;
  uint32_t op = kHello;
  int32_t rank = 0;
  int32_t size = 0;
};

absl::StatusOr<int> ConnectTo(const std::string& name, int peer, int rank, int size,
                              Clock::time_point deadline) {
  sockaddr_un addr;
  const socklen_t len = Address(name, peer, &addr);
  while (true) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(Errno("socket comm: socket"));
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0) {
      Hello hello{kMagic, kHello, rank, size};
      absl::Status s = CheckPeerUser(fd);
      if (s.ok()) s = IoAll(fd, reinterpret_cast<char*>(&hello), sizeof(hello), true, deadline);
      if (!s.ok()) {
        close(fd);
        return s;
      }
      return fd;
    }
    const int err = errno;
    close(fd);
    if (err != ECONNREFUSED && err != ENOENT && err != EAGAIN) {
      errno = err;
      return absl::UnavailableError(Errno("socket comm: connect"));
    }
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("socket comm: group ", name, ": rank ", peer, " did not appear"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

absl::Status AcceptHigher(const std::string& name, int listen_fd, int rank, int size,
                          Clock::time_point deadline, Links& links) {
  for (int pending = size - 1 - rank; pending > 0;) {
    pollfd pfd{listen_fd, POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return absl::DeadlineExceededError(absl::StrCat("socket comm: group ", name, ": ", pending,
                                                      " higher rank(s) did not connect to rank ",
                                                      rank));
    }
    if (poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 1000))) <= 0) continue;
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Hello hello;
    absl::Status s = CheckPeerUser(fd);
    if (s.ok()) s = IoAll(fd, reinterpret_cast<char*>(&hello), sizeof(hello), false, deadline);
    if (s.ok() && (hello.magic != kMagic || hello.op != kHello || hello.size != size ||
                   hello.rank <= rank || hello.rank >= size || links.fds[hello.rank] >= 0)) {
      s = absl::InternalError(absl::StrCat("socket comm: group ", name, ": bad hello (rank ",
                                           hello.rank, " of ", hello.size, ")"));
    }
    if (!s.ok()) {
      close(fd);
      return s;
    }
    links.fds[hello.rank] = fd;
    --pending;
  }
  return absl::OkStatus();
}

absl::Status CheckName(const std::string& name) {
  const bool ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket comm: group name '", name, "' is not 1-64 of [A-Za-z0-9._-]"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string RandomGroupName() {
  std::random_device rd;
  const uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
                     static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

absl::StatusOr<std::unique_ptr<Communicator>> ConnectSocketGroup(const std::string& name, int rank,
                                                                 int size, double timeout_seconds) {
  TV_RETURN_IF_ERROR(CheckName(name));
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrCat("socket comm: rank ", rank, " of ", size));
  }
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  auto links = std::make_shared<Links>();
  links->world_rank = rank;
  links->fds.assign(size, -1);
  const int listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) return absl::InternalError(Errno("socket comm: socket"));
  sockaddr_un addr;
  const socklen_t len = Address(name, rank, &addr);
  if (bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    const std::string why = Errno("bind");
    close(listen_fd);
    return absl::FailedPreconditionError(
        absl::StrCat("socket comm: group ", name, " rank ", rank, ": ", why));
  }
  absl::Status status;
  if (listen(listen_fd, size) != 0) status = absl::InternalError(Errno("socket comm: listen"));
  for (int peer = 0; peer < rank && status.ok(); ++peer) {
    absl::StatusOr<int> fd = ConnectTo(name, peer, rank, size, deadline);
    if (!fd.ok()) {
      status = fd.status();
    } else {
      links->fds[peer] = *fd;
    }
  }
  if (status.ok()) status = AcceptHigher(name, listen_fd, rank, size, deadline, *links);
  close(listen_fd);  // the abstract name goes with it
  TV_RETURN_IF_ERROR(status);
  for (int fd : links->fds) {
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  std::vector<int> members(size);
  for (int r = 0; r < size; ++r) members[r] = r;
  return std::unique_ptr<Communicator>(
      std::make_unique<SocketCommunicator>(std::move(links), std::move(members), rank));
}

}  // namespace turbovid::engine::comm
