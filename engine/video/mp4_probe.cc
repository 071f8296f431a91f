// ISO BMFF (MP4) reader for the first video track: box walk with every size checked against its
// parent, then mdhd, hdlr, stsd (visual sample entry + avcC), stts and stsz (ISO/IEC 14496-12,
// 14496-15 §5.3.3.1 for avcC).
#include "engine/video/mp4_probe.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace turbovid::engine::video {
namespace {

struct Box {
  std::string type;          // four characters, unprintable bytes shown as '?'
  std::string_view payload;  // the contents after the header
  uint64_t offset = 0;       // of the header, in the file
  uint64_t payload_offset = 0;
};

absl::Status Corrupt(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrCat("mp4: ", path, path.empty() ? "" : ": ", what));
}

std::string Printable(std::string_view type) {
  std::string out(type);
  for (char& c : out) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ')) {
      c = '?';
    }
  }
  return out;
}

uint64_t Be(std::string_view b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | static_cast<uint8_t>(b[at + i]);
  return v;
}

// Big-endian fields of one box's payload, read in order after one length check per group.
class Fields {
 public:
  Fields(std::string_view data, std::string path) : data_(data), path_(std::move(path)) {}
  absl::Status Need(uint64_t n) const {
    if (n > data_.size() - at_) {
      return Corrupt(path_, absl::StrCat(data_.size(), " bytes, too short for its fields (needs ",
                                         at_ + n, ")"));
    }
    return absl::OkStatus();
  }
  uint64_t Read(int bytes) {
    const uint64_t v = Be(data_, at_, bytes);
    at_ += bytes;
    return v;
  }
  void Skip(size_t n) { at_ += n; }

 private:
  std::string_view data_;
  std::string path_;
  size_t at_ = 0;
};

// The boxes inside `data` (which starts at file offset `base`); errors name `path`.
absl::StatusOr<std::vector<Box>> Children(std::string_view data, uint64_t base,
                                          const std::string& path) {
  std::vector<Box> boxes;
  uint64_t at = 0;
  while (at < data.size()) {
    const uint64_t left = data.size() - at;
    const std::string where = path.empty() ? "top level" : path;
    if (left < 8) {
      return Corrupt(where, absl::StrCat(left, " stray bytes at file offset ", base + at));
    }
    Box box;
    box.type = Printable(data.substr(at + 4, 4));
    box.offset = base + at;
    uint64_t size = Be(data, at, 4);
    uint64_t header = 8;
    if (size == 1) {
      if (left < 16) return Corrupt(where, absl::StrCat("box ", box.type, ": truncated header"));
      size = Be(data, at + 8, 8);
      header = 16;
    } else if (size == 0) {
      size = left;  // runs to the end of its parent
    }
    if (size < header || size > left) {
      return Corrupt(where,
                     absl::StrCat("box ", box.type, " at file offset ", box.offset, ": size ", size,
                                  " does not fit the ", left, " bytes left"));
    }
    box.payload = data.substr(at + header, size - header);
    box.payload_offset = box.offset + header;
    boxes.push_back(std::move(box));
    at += size;
  }
  return boxes;
}

const Box* Find(const std::vector<Box>& boxes, std::string_view type) {
  for (const Box& b : boxes) {
    if (b.type == type) return &b;
  }
  return nullptr;
}

absl::StatusOr<const Box*> Require(const std::vector<Box>& boxes, std::string_view type,
                                   const std::string& parent) {
  const Box* b = Find(boxes, type);
  if (b == nullptr) return Corrupt(parent, absl::StrCat("no ", std::string(type), " box"));
  return b;
}

std::string H264Profile(int idc, int constraints) {
  const bool set1 = constraints & 0x40, set3 = constraints & 0x10;
  switch (idc) {
    case 66:
      return set1 ? "Constrained Baseline" : "Baseline";
    case 77:
      return "Main";
    case 88:
      return "Extended";
    case 100:
      return "High";
    case 110:
      return set3 ? "High 10 Intra" : "High 10";
    case 122:
      return set3 ? "High 4:2:2 Intra" : "High 4:2:2";
    case 244:
      return set3 ? "High 4:4:4 Intra" : "High 4:4:4 Predictive";
    case 44:
      return "CAVLC 4:4:4";
    default:
      return absl::StrCat("profile_idc ", idc);
  }
}

// stsd: codec, size and (H.264) profile from the first sample entry.
absl::Status ReadSampleEntry(const Box& stsd, const std::string& path, Mp4Info* info) {
  Fields f(stsd.payload, path);
  TV_RETURN_IF_ERROR(f.Need(8));
  f.Skip(4);
  if (f.Read(4) == 0) return Corrupt(path, "no sample entry");
  TV_ASSIGN_OR_RETURN(const std::vector<Box> entries,
                      Children(stsd.payload.substr(8), stsd.payload_offset + 8, path));
  if (entries.empty()) return Corrupt(path, "no sample entry");
  const Box& entry = entries.front();
  const std::string entry_path = absl::StrCat(path, "/", entry.type);
  const std::string& t = entry.type;
  info->codec = t == "avc1" || t == "avc3"   ? "h264"
                : t == "hvc1" || t == "hev1" ? "hevc"
                : t == "av01"                ? "av1"
                : t == "vp09"                ? "vp9"
                : t == "mp4v"                ? "mpeg4"
                                             : t;
  // VisualSampleEntry: 6 reserved, data_reference_index, 16 bytes pre_defined/reserved, width,
  // height, resolutions, reserved, frame_count, compressorname[32], depth, pre_defined = 78.
  constexpr size_t kVisualEntry = 78;
  Fields v(entry.payload, entry_path);
  TV_RETURN_IF_ERROR(v.Need(kVisualEntry));
  v.Skip(24);
  info->width = static_cast<int>(v.Read(2));
  info->height = static_cast<int>(v.Read(2));
  if (info->codec != "h264") return absl::OkStatus();
  TV_ASSIGN_OR_RETURN(const std::vector<Box> inner,
                      Children(entry.payload.substr(kVisualEntry),
                               entry.payload_offset + kVisualEntry, entry_path));
  TV_ASSIGN_OR_RETURN(const Box* avcc, Require(inner, "avcC", entry_path));
  Fields a(avcc->payload, entry_path + "/avcC");
  TV_RETURN_IF_ERROR(a.Need(4));
  a.Skip(1);  // configurationVersion
  const int profile = static_cast<int>(a.Read(1));
  const int constraints = static_cast<int>(a.Read(1));
  info->level = static_cast<int>(a.Read(1));
  info->profile = H264Profile(profile, constraints);
  return absl::OkStatus();
}

// stts and stsz: frame count, total duration in ticks and total sample bytes.
absl::Status ReadSampleTables(const std::vector<Box>& stbl, const std::string& path,
                              uint64_t* ticks, uint64_t* sample_bytes, Mp4Info* info) {
  TV_ASSIGN_OR_RETURN(const Box* stts, Require(stbl, "stts", path));
  Fields t(stts->payload, path + "/stts");
  TV_RETURN_IF_ERROR(t.Need(8));
  t.Skip(4);
  const uint64_t runs = t.Read(4);
  TV_RETURN_IF_ERROR(t.Need(runs * 8));
  uint64_t timed = 0;
  *ticks = 0;
  for (uint64_t i = 0; i < runs; ++i) {
    const uint64_t count = t.Read(4);
    timed += count;
    *ticks += count * t.Read(4);
  }
  TV_ASSIGN_OR_RETURN(const Box* stsz, Require(stbl, "stsz", path));
  Fields s(stsz->payload, path + "/stsz");
  TV_RETURN_IF_ERROR(s.Need(12));
  s.Skip(4);
  const uint64_t fixed = s.Read(4);
  const uint64_t count = s.Read(4);
  *sample_bytes = fixed * count;
  if (fixed == 0) {
    TV_RETURN_IF_ERROR(s.Need(count * 4));
    for (uint64_t i = 0; i < count; ++i) *sample_bytes += s.Read(4);
  }
  if (timed != count) {
    return Corrupt(path, absl::StrCat("stts times ", timed, " samples, stsz has ", count));
  }
  info->frames = static_cast<int64_t>(count);
  return absl::OkStatus();
}

// The first trak whose handler is 'vide', with its mdia children and (from tkhd, 0 without one)
// its track_ID; errors name the path.
absl::StatusOr<std::vector<Box>> VideoMedia(const std::vector<Box>& moov, uint32_t* track_id) {
  for (const Box& trak : moov) {
    if (trak.type != "trak") continue;
    TV_ASSIGN_OR_RETURN(const std::vector<Box> parts,
                        Children(trak.payload, trak.payload_offset, "moov/trak"));
    TV_ASSIGN_OR_RETURN(const Box* mdia, Require(parts, "mdia", "moov/trak"));
    TV_ASSIGN_OR_RETURN(std::vector<Box> media,
                        Children(mdia->payload, mdia->payload_offset, "moov/trak/mdia"));
    TV_ASSIGN_OR_RETURN(const Box* hdlr, Require(media, "hdlr", "moov/trak/mdia"));
    Fields h(hdlr->payload, "moov/trak/mdia/hdlr");
    TV_RETURN_IF_ERROR(h.Need(12));
    if (hdlr->payload.substr(8, 4) != "vide") continue;
    const Box* tkhd = Find(parts, "tkhd");  // needed only to match a fragment's traf
    *track_id = 0;
    if (tkhd == nullptr) return media;
    Fields k(tkhd->payload, "moov/trak/tkhd");
    TV_RETURN_IF_ERROR(k.Need(4));
    const bool v1 = k.Read(1) == 1;
    k.Skip(3);
    TV_RETURN_IF_ERROR(k.Need(v1 ? 20 : 12));
    k.Skip(v1 ? 16 : 8);
    *track_id = static_cast<uint32_t>(k.Read(4));
    return media;
  }
  return Corrupt("moov", "no video track");
}

// trex defaults of the video track (moov/mvex); a missing trex leaves them 0.
struct TrackDefaults {
  uint64_t duration = 0;
  uint64_t size = 0;
};

absl::StatusOr<TrackDefaults> ReadTrex(const Box& mvex, uint32_t track_id) {
  TV_ASSIGN_OR_RETURN(const std::vector<Box> boxes,
                      Children(mvex.payload, mvex.payload_offset, "moov/mvex"));
  TrackDefaults d;
  for (const Box& trex : boxes) {
    if (trex.type != "trex") continue;
    Fields f(trex.payload, "moov/mvex/trex");
    TV_RETURN_IF_ERROR(f.Need(24));
    f.Skip(4);
    if (f.Read(4) != track_id) continue;
    f.Skip(4);  // default_sample_description_index
    d.duration = f.Read(4);
    d.size = f.Read(4);
  }
  return d;
}

// The video track's samples in every moof: count, ticks and bytes summed, each trun's data
// checked to lie inside one mdat payload.
absl::Status ReadFragments(const std::vector<Box>& top, uint32_t track_id,
                           const TrackDefaults& trex, uint64_t* ticks, Mp4Info* info) {
  for (const Box& moof : top) {
    if (moof.type != "moof") continue;
    ++info->fragments;
    TV_ASSIGN_OR_RETURN(const std::vector<Box> trafs,
                        Children(moof.payload, moof.payload_offset, "moof"));
    uint64_t next_data = moof.offset;  // where a trun without data_offset continues
    for (const Box& traf : trafs) {
      if (traf.type != "traf") continue;
      TV_ASSIGN_OR_RETURN(const std::vector<Box> parts,
                          Children(traf.payload, traf.payload_offset, "moof/traf"));
      TV_ASSIGN_OR_RETURN(const Box* tfhd, Require(parts, "tfhd", "moof/traf"));
      Fields h(tfhd->payload, "moof/traf/tfhd");
      TV_RETURN_IF_ERROR(h.Need(8));
      const uint64_t flags = h.Read(4) & 0xffffff;
      if (h.Read(4) != track_id) continue;
      const int optional = (flags & 0x1 ? 8 : 0) + (flags & 0x2 ? 4 : 0) + (flags & 0x8 ? 4 : 0) +
                           (flags & 0x10 ? 4 : 0) + (flags & 0x20 ? 4 : 0);
      TV_RETURN_IF_ERROR(h.Need(optional));
      // The data base: base_data_offset, else the moof (default-base-is-moof, or the first
      // traf), else where the previous traf's data ended.
      uint64_t base = flags & 0x1 ? h.Read(8) : (flags & 0x020000 ? moof.offset : next_data);
      if (flags & 0x2) h.Skip(4);
      const uint64_t default_duration = flags & 0x8 ? h.Read(4) : trex.duration;
      const uint64_t default_size = flags & 0x10 ? h.Read(4) : trex.size;
      for (const Box& trun : parts) {
        if (trun.type != "trun") continue;
        Fields r(trun.payload, "moof/traf/trun");
        TV_RETURN_IF_ERROR(r.Need(8));
        const uint64_t tflags = r.Read(4) & 0xffffff;
        const uint64_t count = r.Read(4);
        TV_RETURN_IF_ERROR(r.Need((tflags & 0x1 ? 4 : 0) + (tflags & 0x4 ? 4 : 0)));
        uint64_t data = base;
        if (tflags & 0x1) data = base + static_cast<uint64_t>(static_cast<int32_t>(r.Read(4)));
        if (tflags & 0x4) r.Skip(4);
        const uint64_t per_sample = ((tflags & 0x100 ? 4 : 0) + (tflags & 0x200 ? 4 : 0) +
                                     (tflags & 0x400 ? 4 : 0) + (tflags & 0x800 ? 4 : 0));
        if (per_sample == 0 && count > (uint64_t{1} << 32)) {
          return Corrupt("moof/traf/trun", absl::StrCat(count, " samples"));
        }
        TV_RETURN_IF_ERROR(r.Need(count * per_sample));
        uint64_t bytes = 0;
        if (per_sample == 0) {  // every sample takes the defaults: no loop over up to 2^32 of them
          *ticks += count * default_duration;  // both < 2^32 + 1: the products fit in 64 bits
          bytes = count * default_size;
        }
        for (uint64_t i = 0; per_sample != 0 && i < count; ++i) {
          *ticks += tflags & 0x100 ? r.Read(4) : default_duration;
          bytes += tflags & 0x200 ? r.Read(4) : default_size;
          if (tflags & 0x400) r.Skip(4);
          if (tflags & 0x800) r.Skip(4);
        }
        bool inside = false;
        for (const Box& mdat : top) {
          inside |= mdat.type == "mdat" && data >= mdat.payload_offset &&
                    data - mdat.payload_offset <= mdat.payload.size() &&
                    bytes <= mdat.payload.size() - (data - mdat.payload_offset);
        }
        if (!inside) {
          return Corrupt("moof/traf/trun",
                         absl::StrCat(count, " samples of ", bytes, " bytes at file offset ", data,
                                      " are not inside an mdat"));
        }
        info->frames += static_cast<int64_t>(count);
        data += bytes;
        next_data = base = data;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Mp4Info> ProbeMp4(std::string_view bytes) {
  if (bytes.size() < 8 || bytes.substr(4, 4) != "ftyp") {
    return Corrupt("", "not an MP4 file (no ftyp box at the start)");
  }
  Mp4Info info;
  info.size_bytes = bytes.size();
  TV_ASSIGN_OR_RETURN(const std::vector<Box> top, Children(bytes, 0, ""));
  TV_ASSIGN_OR_RETURN(const Box* moov, Require(top, "moov", "top level"));
  TV_ASSIGN_OR_RETURN(const Box* mdat, Require(top, "mdat", "top level"));
  info.faststart = moov->offset < mdat->offset;
  uint64_t mdat_bytes = 0;
  for (const Box& b : top) mdat_bytes += b.type == "mdat" ? b.payload.size() : 0;
  TV_ASSIGN_OR_RETURN(const std::vector<Box> tracks,
                      Children(moov->payload, moov->payload_offset, "moov"));
  uint32_t track_id = 0;
  TV_ASSIGN_OR_RETURN(const std::vector<Box> media, VideoMedia(tracks, &track_id));
  const Box* mvex = Find(tracks, "mvex");
  const std::string mdia = "moov/trak/mdia";
  TV_ASSIGN_OR_RETURN(const Box* mdhd, Require(media, "mdhd", mdia));
  Fields m(mdhd->payload, mdia + "/mdhd");
  TV_RETURN_IF_ERROR(m.Need(4));
  const bool v1 = m.Read(1) == 1;
  m.Skip(3);
  TV_RETURN_IF_ERROR(m.Need(v1 ? 28 : 16));
  m.Skip(v1 ? 16 : 8);
  info.timescale = static_cast<uint32_t>(m.Read(4));
  info.duration_ticks = m.Read(v1 ? 8 : 4);
  if (info.timescale == 0) return Corrupt(mdia + "/mdhd", "timescale is 0");
  info.duration_seconds = static_cast<double>(info.duration_ticks) / info.timescale;
  TV_ASSIGN_OR_RETURN(const Box* minf, Require(media, "minf", mdia));
  TV_ASSIGN_OR_RETURN(const std::vector<Box> minf_boxes,
                      Children(minf->payload, minf->payload_offset, mdia + "/minf"));
  TV_ASSIGN_OR_RETURN(const Box* stbl, Require(minf_boxes, "stbl", mdia + "/minf"));
  const std::string stbl_path = mdia + "/minf/stbl";
  TV_ASSIGN_OR_RETURN(const std::vector<Box> tables,
                      Children(stbl->payload, stbl->payload_offset, stbl_path));
  TV_ASSIGN_OR_RETURN(const Box* stsd, Require(tables, "stsd", stbl_path));
  TV_RETURN_IF_ERROR(ReadSampleEntry(*stsd, stbl_path + "/stsd", &info));
  uint64_t ticks = 0, sample_bytes = 0;
  TV_RETURN_IF_ERROR(ReadSampleTables(tables, stbl_path, &ticks, &sample_bytes, &info));
  if (mvex != nullptr) {
    info.fragmented = true;
    if (track_id == 0) return Corrupt("moov/trak", "fragmented, but no tkhd names the track");
    TV_ASSIGN_OR_RETURN(const TrackDefaults trex, ReadTrex(*mvex, track_id));
    TV_RETURN_IF_ERROR(ReadFragments(top, track_id, trex, &ticks, &info));
    info.duration_ticks = ticks;
    info.duration_seconds = static_cast<double>(ticks) / info.timescale;
  }
  if (sample_bytes > mdat_bytes) {
    return Corrupt(stbl_path + "/stsz",
                   absl::StrCat("samples of ", sample_bytes, " bytes do not fit the ", mdat_bytes,
                                " bytes of mdat"));
  }
  if (ticks > 0 && info.frames > 0) {
    const uint64_t num = static_cast<uint64_t>(info.frames) * info.timescale;
    const uint64_t g = std::gcd(num, ticks);
    info.fps_num = static_cast<int64_t>(num / g);
    info.fps_den = static_cast<int64_t>(ticks / g);
    info.fps = static_cast<double>(num) / static_cast<double>(ticks);
  }
  return info;
}

absl::StatusOr<Mp4Info> ProbeMp4File(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (in == nullptr) {
    const int e = errno;
    const std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(e));
    if (e == ENOENT || e == ENOTDIR) return absl::NotFoundError(message);
    if (e == EACCES || e == EPERM) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }
  std::string bytes;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), in.get())) > 0) bytes.append(buf, n);
  if (std::ferror(in.get())) {
    return absl::InternalError(absl::StrCat(path, ": read failed: ", std::strerror(errno)));
  }
  return ProbeMp4(bytes);
}

}  // namespace turbovid::engine::video
