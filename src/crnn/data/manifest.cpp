#include "crnn/data/manifest.h"

#include <fmt/core.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "crnn/util/text.h"

namespace fs = std::filesystem;

namespace crnn::data {

// --- CSV ----------------------------------------------------------------------

namespace csv {

std::vector<Record> parse(const std::string& text, const std::string& source) {
  std::vector<Record> records;
  size_t i = 0;
  const size_t n = text.size();
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 BOM (Excel writes one)
  size_t line = 1;
  // A NUL byte never belongs in a CSV text; it would cut ids and paths short where
  // they reach C APIs (HDF5 names, file names). UTF-16 files are full of them.
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    const bool utf16 = text.compare(0, 2, "\xFF\xFE") == 0 || text.compare(0, 2, "\xFE\xFF") == 0;
    throw DataError(fmt::format("{}:{}: NUL byte in a text file ({}; save it as UTF-8 CSV)", source,
                                1 + std::count(text.begin(), text.begin() + nul, '\n'),
                                utf16 ? "it is UTF-16" : "a binary or UTF-16 file?"));
  }

  // Consumes a line break at i (LF, CRLF or a lone CR); returns false if none.
  auto eat_newline = [&]() {
    if (i < n && text[i] == '\r') {
      ++i;
      if (i < n && text[i] == '\n') ++i;
      ++line;
      return true;
    }
    if (i < n && text[i] == '\n') {
      ++i;
      ++line;
      return true;
    }
    return false;
  };

  while (i < n) {
    Record rec;
    rec.line = line;
    // A record of empty unquoted fields only is a blank line: "" or ",,,," (the
    // empty rows a spreadsheet writes below its data).
    bool blank = true;
    while (true) {
      std::string field;
      if (i < n && text[i] == '"') {
        blank = false;
        const size_t open_line = line;
        ++i;
        bool closed = false;
        while (i < n) {
          char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (c == '\n' || (c == '\r' && !(i + 1 < n && text[i + 1] == '\n'))) ++line;
          field += c;
          ++i;
        }
        if (!closed)
          throw DataError(fmt::format("{}:{}: unterminated quoted field (opened here, never closed)",
                                      source, open_line));
        if (i < n && text[i] != ',' && text[i] != '\r' && text[i] != '\n')
          throw DataError(fmt::format(
              "{}:{}: unexpected character '{}' after a closing quote (a quote inside a quoted "
              "field must be doubled: \"\")",
              source, line, text[i]));
      } else {
        while (i < n && text[i] != ',' && text[i] != '\r' && text[i] != '\n') {
          if (text[i] == '"')
            throw DataError(fmt::format(
                "{}:{}: quote inside an unquoted field (quote the whole field and double the "
                "quote)",
                source, line));
          field += text[i];
          ++i;
        }
        if (!field.empty()) blank = false;
      }
      rec.fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      eat_newline();
      break;
    }
    if (!blank) records.push_back(std::move(rec));
  }
  return records;
}

std::string quote(const std::string& field) {
  bool needs = field.find_first_of(",\"\r\n") != std::string::npos ||
               (!field.empty() && (field.front() == ' ' || field.back() == ' '));
  if (!needs) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace csv

// --- Utterance / Manifest -------------------------------------------------------

const std::string& Utterance::label(const std::string& task) const {
  static const std::string none;
  auto it = labels.find(task);
  return it == labels.end() ? none : it->second;
}

namespace {
const std::set<std::string> kReserved{"id", "path", "speaker", "split"};

bool valid_split(const std::string& s) {
  return s.empty() || std::find(split_names().begin(), split_names().end(), s) != split_names().end();
}
}  // namespace

Manifest::Manifest(std::vector<std::string> tasks) : tasks_(std::move(tasks)) {
  std::set<std::string> seen;
  for (const auto& t : tasks_) {
    if (t.empty()) throw DataError("manifest: empty task name");
    if (kReserved.count(t)) throw DataError(fmt::format("manifest: '{}' is reserved, not a task", t));
    if (!seen.insert(t).second) throw DataError(fmt::format("manifest: duplicate task '{}'", t));
  }
}

bool Manifest::has_task(const std::string& task) const {
  return std::find(tasks_.begin(), tasks_.end(), task) != tasks_.end();
}

bool Manifest::has_split() const {
  return std::any_of(utterances_.begin(), utterances_.end(),
                     [](const Utterance& u) { return !u.split.empty(); });
}

void Manifest::add(Utterance u) {
  if (u.id.empty()) throw DataError("empty utterance id");
  if (u.path.empty()) throw DataError(fmt::format("utterance '{}': empty path", u.id));
  if (u.speaker.empty()) throw DataError(fmt::format("utterance '{}': empty speaker", u.id));
  if (!valid_split(u.split))
    throw DataError(fmt::format("utterance '{}': unknown split '{}' (expected train, valid or test)",
                                u.id, u.split));
  for (auto it = u.labels.begin(); it != u.labels.end();) {
    if (!has_task(it->first))
      throw DataError(fmt::format("utterance '{}': label for unknown task '{}'", u.id, it->first));
    // An empty label means "no label": store it as absent so there is one representation.
    it = it->second.empty() ? u.labels.erase(it) : std::next(it);
  }
  auto [pos, inserted] = index_.emplace(u.id, utterances_.size());
  if (!inserted)
    throw DataError(fmt::format("duplicate utterance id '{}' (first at row {})", u.id, pos->second + 1));
  utterances_.push_back(std::move(u));
}

Manifest Manifest::read(const std::string& path) {
  std::string text = read_text_file(path);
  fs::path base = fs::absolute(fs::path(path)).parent_path();
  Manifest m = parse(text, base.string(), path);
  // Nothing any command can do with it; "0 utterances extracted" (exit 0) and
  // "task has 0 classes" would not say why.
  if (m.size() == 0) throw DataError(path + ": no utterances (the manifest has a header row only)");
  return m;
}

Manifest Manifest::parse(const std::string& text, const std::string& base_dir,
                         const std::string& source) {
  auto records = csv::parse(text, source);
  if (records.empty()) throw DataError(fmt::format("{}: empty manifest (no header row)", source));
  const auto& header = records[0];
  std::map<std::string, size_t> col;
  std::vector<std::string> tasks;
  std::vector<size_t> task_cols;
  for (size_t c = 0; c < header.fields.size(); ++c) {
    std::string name = trim(header.fields[c]);
    // A column name is a task name, repeated in every result file (JSON, UTF-8).
    if (const size_t at = utf8_error_at(name); at != std::string::npos)
      throw DataError(fmt::format("{}:{}: column name '{}' is not UTF-8 text (byte 0x{:02x}); save the manifest as "
                                  "UTF-8",
                                  source, header.line, printable(name), static_cast<unsigned char>(name[at])));
    if (name.empty())
      throw DataError(fmt::format("{}:{}: column {} has an empty name{}", source, header.line, c + 1,
                                  c + 1 == header.fields.size() ? " (a trailing comma?)"
                                  : c == 0                     ? " (an index column? pandas: to_csv(..., index=False))"
                                                               : ""));
    if (!col.emplace(name, c).second)
      throw DataError(fmt::format("{}:{}: duplicate column '{}'", source, header.line, name));
    if (!kReserved.count(name)) {
      tasks.push_back(name);
      task_cols.push_back(c);
    }
  }
  std::vector<std::string> missing;
  // Without an id column, an utterance's id is its file name without the
  // extension (a folder of WAVs and a CSV of labels need no made-up ids).
  const bool has_id = col.count("id") > 0;
  for (const char* required : {"path", "speaker"})
    if (!col.count(required)) missing.push_back(std::string("'") + required + "'");
  if (!missing.empty()) {
    // The usual causes, said: another separator, other capitals, another name for the audio path.
    std::string hint;
    if (header.fields.size() == 1 && header.fields[0].find_first_of(";\t") != std::string::npos) {
      hint = "; the header is one field: crnn reads comma-separated CSV, save it with ',' as the separator";
    } else {
      for (const auto& [name, c] : col) {
        const std::string lower = to_lower(name);
        if (lower != name && (lower == "id" || lower == "path" || lower == "speaker") && !col.count(lower))
          hint += fmt::format("; column names are case-sensitive: rename '{}' to '{}'", name, lower);
        else if (!col.count("path") && (lower == "file" || lower == "filename" || lower == "wav" || lower == "audio"))
          hint += fmt::format("; if '{}' holds the audio files, name it 'path'", name);
        else if (!col.count("speaker") && (lower == "talker" || lower == "spk" || lower == "speaker_id" ||
                                           lower == "speakerid" || lower == "subject" || lower == "actor" ||
                                           lower == "participant" || lower == "client_id"))
          hint += fmt::format("; if '{}' names the speakers, name it 'speaker'", name);
      }
    }
    throw DataError(fmt::format("{}:{}: missing required column{} {} (header has: {}){}", source, header.line,
                                missing.size() > 1 ? "s" : "", fmt::join(missing, ", "),
                                fmt::join(header.fields, ", "), hint));
  }

  if (!has_id)  // "ID" meant as the ids would otherwise become a label column
    for (const auto& [name, c] : col)
      if (to_lower(name) == "id")
        throw DataError(fmt::format("{}:{}: column names are case-sensitive: rename '{}' to 'id'", source,
                                    header.line, name));
  Manifest m(tasks);
  const size_t c_path = col["path"], c_spk = col["speaker"], c_id = has_id ? col["id"] : c_path;
  const bool has_split = col.count("split") > 0;
  const size_t c_split = has_split ? col["split"] : 0;
  fs::path base(base_dir);
  std::vector<size_t> line_of_row;  // for "first on line N" in duplicate-id errors
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& rec = records[r];
    if (rec.fields.size() != header.fields.size())
      throw DataError(fmt::format("{}:{}: expected {} fields (as in the header), found {}", source,
                                  rec.line, header.fields.size(), rec.fields.size()));
    // Ids, speakers, splits and labels are text that every result file repeats
    // (as JSON, UTF-8): a Latin-1 label would come back altered (U+FFFD) and no
    // longer match the CSV. Paths are file names, whatever their bytes.
    for (size_t c = 0; c < rec.fields.size(); ++c) {
      if (c == c_path) continue;
      const std::string& f = rec.fields[c];
      if (const size_t at = utf8_error_at(f); at != std::string::npos)
        throw DataError(fmt::format("{}:{}: column '{}' holds '{}', which is not UTF-8 text (byte 0x{:02x} at "
                                    "position {}); save the manifest as UTF-8",
                                    source, rec.line, header.fields[c], printable(f),
                                    static_cast<unsigned char>(f[at]), at + 1));
    }
    Utterance u;
    std::string p = rec.fields[c_path];
    u.id = has_id ? rec.fields[c_id] : fs::path(p).stem().string();
    u.speaker = rec.fields[c_spk];
    if (p.empty()) throw DataError(fmt::format("{}:{}: empty path{}", source, rec.line, has_id ? " for '" + u.id + "'" : ""));
    if (u.id.empty()) throw DataError(fmt::format("{}:{}: empty id", source, rec.line));
    if (!has_id && utf8_error_at(u.id) != std::string::npos)
      throw DataError(fmt::format("{}:{}: the id would be the file name '{}', which is not UTF-8 text; add an id "
                                  "column",
                                  source, rec.line, printable(u.id)));
    if (u.speaker.empty())
      throw DataError(fmt::format("{}:{}: empty speaker for '{}'", source, rec.line, u.id));
    fs::path fp(p);
    u.path = (fp.is_absolute() || base_dir.empty() ? fp : base / fp).lexically_normal().string();
    if (has_split) {
      u.split = rec.fields[c_split];
      if (!valid_split(u.split))
        throw DataError(fmt::format("{}:{}: unknown split '{}' for '{}' (expected train, valid, "
                                    "test or empty)",
                                    source, rec.line, u.split, u.id));
    }
    for (size_t t = 0; t < tasks.size(); ++t) {
      const std::string& v = rec.fields[task_cols[t]];
      if (!v.empty()) u.labels[tasks[t]] = v;
    }
    if (m.contains(u.id))
      throw DataError(fmt::format("{}:{}: duplicate utterance id '{}' (first on line {}){}", source, rec.line, u.id,
                                  line_of_row[m.index_.at(u.id)],
                                  has_id ? ""
                                  : m[m.index_.at(u.id)].path == u.path
                                      ? "; the same file twice"
                                      : "; without an id column the id is the file name without its extension, so "
                                        "two files of one name need an id column"));
    u.origin = fmt::format("{}:{}", source, rec.line);
    m.add(std::move(u));
    line_of_row.push_back(rec.line);
  }
  return m;
}

std::string Manifest::to_csv(const std::string& base_dir, const ManifestWriteOptions& options) const {
  const bool split = options.always_write_split || has_split();
  std::string out = "id,path,speaker";
  if (split) out += ",split";
  for (const auto& t : tasks_) out += "," + csv::quote(t);
  out += "\n";
  fs::path base = base_dir.empty() ? fs::path() : fs::absolute(base_dir).lexically_normal();
  for (const auto& u : utterances_) {
    std::string p = u.path;
    if (options.relative_paths && !base.empty()) {
      fs::path abs = fs::absolute(u.path).lexically_normal();
      fs::path rel = abs.lexically_relative(base);
      if (!rel.empty()) p = rel.string();
    }
    out += csv::quote(u.id) + "," + csv::quote(p) + "," + csv::quote(u.speaker);
    if (split) out += "," + csv::quote(u.split);
    for (const auto& t : tasks_) out += "," + csv::quote(u.label(t));
    out += "\n";
  }
  return out;
}

void Manifest::write(const std::string& path, const ManifestWriteOptions& options) const {
  fs::path dir = fs::absolute(fs::path(path)).parent_path();
  write_text_file_atomic(path, to_csv(dir.string(), options));
}

const Utterance& Manifest::find(const std::string& id) const {
  auto it = index_.find(id);
  if (it == index_.end()) throw DataError(fmt::format("no utterance with id '{}'", id));
  return utterances_[it->second];
}

std::vector<std::string> Manifest::speakers() const {
  std::set<std::string> s;
  for (const auto& u : utterances_) s.insert(u.speaker);
  return {s.begin(), s.end()};
}

Manifest Manifest::subset(const std::string& split) const {
  Manifest m(tasks_);
  for (const auto& u : utterances_)
    if (u.split == split) m.add(u);
  return m;
}

std::vector<std::string> Manifest::validate_paths() const {
  std::vector<std::string> problems;
  for (const auto& u : utterances_) {
    std::error_code ec;
    auto st = fs::status(u.path, ec);
    if (!fs::exists(st))
      problems.push_back(fmt::format("{}: file not found: {}", u.id, u.path));
    else if (!fs::is_regular_file(st))
      problems.push_back(fmt::format("{}: not a regular file: {}", u.id, u.path));
  }
  return problems;
}

// --- LabelSet -----------------------------------------------------------------

LabelSet::LabelSet(std::vector<std::string> names, std::string task)
    : task_(std::move(task)), names_(std::move(names)) {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i].empty()) throw DataError(fmt::format("task '{}': empty class name", task_));
    if (!index_.emplace(names_[i], static_cast<int64_t>(i)).second)
      throw DataError(fmt::format("task '{}': duplicate class '{}'", task_, names_[i]));
  }
}

LabelSet LabelSet::from_manifest(const Manifest& manifest, const std::string& task,
                                 const std::vector<std::string>& order) {
  if (!manifest.has_task(task))
    throw DataError(fmt::format("manifest has no task '{}' (tasks: {})", task,
                                fmt::join(manifest.tasks(), ", ")));
  std::set<std::string> seen;
  for (const auto& u : manifest.utterances()) {
    const auto& l = u.label(task);
    if (!l.empty()) seen.insert(l);
  }
  if (order.empty()) return LabelSet({seen.begin(), seen.end()}, task);
  LabelSet fixed(order, task);
  for (const auto& u : manifest.utterances())
    if (!u.label(task).empty()) fixed.index_of(u, task);  // throws naming the row
  return fixed;
}

int64_t LabelSet::index_of(const Utterance& u, const std::string& task) const {
  const auto& l = u.label(task);
  auto it = index_.find(l);
  if (it == index_.end())
    throw DataError(fmt::format("{}utterance '{}': unknown label '{}' for task '{}' (known: {})",
                                u.origin.empty() ? "" : u.origin + ": ", u.id, l, task, fmt::join(names_, ", ")));
  return it->second;
}

int64_t LabelSet::index(const std::string& label) const {
  auto it = index_.find(label);
  if (it == index_.end())
    throw DataError(fmt::format("unknown label '{}'{} (known: {})", label,
                                task_.empty() ? "" : fmt::format(" for task '{}'", task_),
                                fmt::join(names_, ", ")));
  return it->second;
}

const std::string& LabelSet::name(int64_t index) const {
  if (index < 0 || index >= size())
    throw DataError(fmt::format("class index {} out of range [0, {}) for task '{}'", index, size(), task_));
  return names_[static_cast<size_t>(index)];
}

}  // namespace crnn::data
