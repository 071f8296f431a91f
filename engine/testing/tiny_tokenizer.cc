// Tiny SentencePiece tokenizers for test checkpoints: a deterministic pseudo-English corpus fed to
// the spm_train binary (spm_train.h), the result checked with our own reader (docs/model-math.md).
#include "engine/testing/tiny_tokenizer.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/testing/spm_train.h"
#include "engine/text/spm_model.h"
#include "engine/text/tokenizer.h"

namespace turbovid::engine {
namespace {

// English prompt words; the tiny corpus mixes them with generated pseudo-words so that a unigram
// model of a few hundred pieces has enough distinct substrings to choose from.
constexpr const char* kWords[] = {
    "a",          "the",      "cat",      "dog",        "runs",         "walks",       "through",
    "forest",     "city",     "night",    "bright",     "golden",       "light",       "over",
    "ocean",      "waves",    "slowly",   "camera",     "pans",         "across",      "red",
    "blue",       "green",    "mountain", "river",      "sunset",       "children",    "playing",
    "in",         "park",     "old",      "man",        "woman",        "smiling",     "rain",
    "falling",    "on",       "street",   "neon",       "signs",        "glowing",     "astronaut",
    "riding",     "horse",    "space",    "station",    "flowers",      "blooming",    "timelapse",
    "clouds",     "moving",   "fast",     "close-up",   "of",           "eyes",        "cinematic",
    "shot",       "drone",    "view",     "snowy",      "village",      "winter",      "morning",
    "coffee",     "steam",    "rising",   "from",       "cup",          "robot",       "dancing",
    "stage",      "crowd",    "cheering", "birds",      "flying",       "above",       "lake",
    "reflection", "trees",    "autumn",   "leaves",     "wind",         "blowing",     "soft",
    "warm",       "cold",     "dark",     "stormy",     "sky",          "lightning",   "train",
    "passing",    "bridge",   "painting", "style",      "watercolor",   "realistic",   "4k",
    "high",       "quality",  "detailed", "portrait",   "young",        "girl",        "boy",
    "reading",    "book",     "library",  "quiet",      "room",         "kitchen",     "chef",
    "cooking",    "pasta",    "fire",     "candle",     "flickering",   "beach",       "sand",
    "footprints", "surfer",   "catching", "big",        "wave",         "jellyfish",   "underwater",
    "coral",      "reef",     "fish",     "swimming",   "desert",       "camel",       "dunes",
    "pyramid",    "ancient",  "temple",   "monk",       "meditating",   "garden",      "butterfly",
    "landing",    "flower",   "petals",   "street",     "market",       "vendors",     "selling",
    "fruit",      "bicycle",  "racing",   "car",        "highway",      "tunnel",      "spaceship",
    "launching",  "rocket",   "smoke",    "explosion",  "slow",         "motion",      "water",
    "droplets",   "splash",   "glass",    "shattering", "mirror",       "dragon",      "breathing",
    "castle",     "knight",   "sword",    "battle",     "wolves",       "howling",     "moon",
    "stars",      "galaxy",   "nebula",   "zooming",    "into",         "microscope",  "cells",
    "dividing",   "hands",    "typing",   "keyboard",   "computer",     "screen",      "code",
    "scrolling",  "office",   "workers",  "meeting",    "table",        "grandmother", "knitting",
    "sweater",    "cat's",    "tail",     "puppy",      "chasing",      "ball",        "grass",
    "field",      "wheat",    "tractor",  "farmer",     "barn",         "sheep",       "grazing",
    "hills",      "fog",      "mist",     "lantern",    "festival",     "fireworks",   "exploding",
    "colorful",   "umbrella", "jumping",  "puddle",     "skateboarder", "trick",       "ramp",
    "violinist",  "playing",  "music",    "orchestra",  "concert",      "hall",        "applause",
    "and",        "with",     "while",    "under",      "behind",       "beside",      "near",
    "far",        "away",     "together", "alone",      "happy",        "sad",         "angry",
    "calm"};

// Deterministic pseudo-English sentences (fixed LCG) for training tiny tokenizers, one per line.
class TinyCorpus {
 public:
  explicit TinyCorpus(int pseudo_words) {
    static constexpr const char* kOnsets[] = {"b", "c", "d",  "f",  "g",  "h",  "j",  "k",
                                              "l", "m", "n",  "p",  "r",  "s",  "t",  "v",
                                              "w", "z", "br", "ch", "sh", "st", "tr", "pl"};
    static constexpr const char* kVowels[] = {"a", "e", "i", "o", "u", "ai", "ou", "ee", "y"};
    static constexpr const char* kCodas[] = {"", "", "", "n", "r", "s", "l", "m", "t", "ng"};
    for (int i = 0; i < pseudo_words; ++i) {
      std::string w;
      const int syllables = 1 + static_cast<int>(Rand() % 3);
      for (int j = 0; j < syllables; ++j) {
        w += kOnsets[Rand() % std::size(kOnsets)];
        w += kVowels[Rand() % std::size(kVowels)];
        w += kCodas[Rand() % std::size(kCodas)];
      }
      pseudo_.push_back(std::move(w));
    }
  }
  std::string NextSentence() {
    std::string s;
    const int n = 4 + static_cast<int>(Rand() % 12);
    for (int i = 0; i < n; ++i) {
      if (i > 0) s += Rand() % 9 == 0 ? ", " : " ";
      if (Rand() % 5 < 2 && !pseudo_.empty()) {
        s += pseudo_[Rand() % pseudo_.size()];
      } else {
        s += kWords[Rand() % std::size(kWords)];
      }
    }
    s += Rand() % 3 == 0 ? "!" : ".";
    return s;
  }

 private:
  uint64_t Rand() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return state_ >> 33;
  }
  uint64_t state_ = 0x5eed;
  std::vector<std::string> pseudo_;
};

}  // namespace

absl::Status CreateTinyTokenizer(const std::string& dir, int vocab_size) {
  if (vocab_size < kMinTinyVocab) {
    return absl::InvalidArgumentError(absl::StrCat("vocab_size: ", vocab_size, " < ", kMinTinyVocab,
                                                   " (byte fallback takes 256 pieces)"));
  }
  std::string spm_train;
  TV_RETURN_IF_ERROR(spm::FindSpmTrain(&spm_train));
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create: ", ec.message()));

  // Scratch folder next to the output so that concurrent trainings never share files.
  const fs::path work = fs::path(dir) / absl::StrCat(".spm_train.", ::getpid());
  fs::remove_all(work, ec);
  fs::create_directories(work, ec);
  if (ec)
    return absl::InternalError(absl::StrCat(work.string(), ": cannot create: ", ec.message()));
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(p, ignored);
    }
  } cleanup{work};

  const fs::path corpus_path = work / "corpus.txt";
  {
    std::ofstream corpus(corpus_path, std::ios::binary | std::ios::trunc);
    TinyCorpus gen(vocab_size * 4);
    const int sentences = std::max(4000, vocab_size * 16);
    for (int i = 0; i < sentences; ++i) corpus << gen.NextSentence() << '\n';
    corpus.close();
    if (!corpus) return absl::InternalError(absl::StrCat(corpus_path.string(), ": write failed"));
  }
  // Relative paths from inside `work`: the model records its TrainerSpec, which must not depend
  // on where it was trained.
  TV_RETURN_IF_ERROR(spm::RunSpmTrain(
      {
          "--input=corpus.txt",
          "--model_prefix=spiece",
          "--model_type=unigram",
          absl::StrCat("--vocab_size=", vocab_size),
          "--pad_id=0",
          "--eos_id=1",
          "--unk_id=2",
          "--bos_id=-1",
          "--normalization_rule_name=nmt_nfkc",
          "--byte_fallback=true",
          "--character_coverage=1.0",
          "--num_threads=1",
          "--shuffle_input_sentence=false",
          "--random_seed=1234",
          "--minloglevel=2",
      },
      work.string()));
  const fs::path trained = work / "spiece.model";
  // Check what we wrote before publishing it.
  TV_ASSIGN_OR_RETURN(std::unique_ptr<spm::Model> model, spm::Model::Load(trained.string()));
  if (model->piece_size() != vocab_size || model->eos_id() != Tokenizer::kEosId ||
      model->pad_id() != Tokenizer::kPadId) {
    return absl::InternalError(absl::StrCat("spm_train produced ", model->piece_size(),
                                            " pieces (eos ", model->eos_id(), ", pad ",
                                            model->pad_id(), "), wanted ", vocab_size));
  }
  const fs::path out = fs::path(dir) / "spiece.model";
  fs::rename(trained, out, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(out.string(), ": cannot write: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace turbovid::engine
