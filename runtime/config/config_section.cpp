#include "runtime/config/config_section.h"

#include <algorithm>
#include <sstream>

#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/base/text.h"

namespace slim::config {

namespace {

template <typename T>
const char* TypeName();
template <>
const char* TypeName<bool>() { return "true or false"; }
template <>
const char* TypeName<int64_t>() { return "an integer"; }
template <>
const char* TypeName<double>() { return "a number"; }
template <>
const char* TypeName<std::string>() { return "a string"; }
template <>
const char* TypeName<std::vector<std::string>>() { return "a string or a list of strings"; }

std::string Describe(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  return "'" + node.Scalar() + "'";
}

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

}  // namespace

ConfigSection::ConfigSection(YAML::Node node, std::string path, std::string file,
                             YAML::Node resolved)
    : node_(std::move(node)),
      path_(std::move(path)),
      file_(std::move(file)),
      resolved_(std::move(resolved)),
      known_keys_(std::make_shared<std::set<std::string>>()) {}

bool ConfigSection::Has(const std::string& key) const {
  known_keys_->insert(key);
  return node_.IsMap() && node_[key] && !node_[key].IsNull();
}

bool ConfigSection::IsWritten(const std::string& key) const {
  known_keys_->insert(key);
  return node_.IsMap() && node_[key];
}

bool ConfigSection::IsMapping(const std::string& key) const {
  return Has(key) && node_[key].IsMap();
}

bool ConfigSection::IsList(const std::string& key) const {
  return Has(key) && node_[key].IsSequence();
}

template <typename T>
T ConfigSection::Convert(const std::string& key, const YAML::Node& value) const {
  if constexpr (IsVector<T>::value) {
    using Element = typename T::value_type;
    if (!value.IsSequence()) {
      Fail(key, std::string("expected a list of ") + TypeName<Element>() + ", got " +
                    Describe(value));
    }
    T result;
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string element_key = key + "[" + std::to_string(i) + "]";
      if constexpr (IsVector<Element>::value) {
        if (value[i].IsScalar()) {
          result.push_back({Convert<typename Element::value_type>(element_key, value[i])});
          continue;
        }
      }
      result.push_back(Convert<Element>(element_key, value[i]));
    }
    return result;
  } else {
    if (!value.IsScalar()) {
      Fail(key, std::string("expected ") + TypeName<T>() + ", got " + Describe(value));
    }
    try {
      return value.as<T>();
    } catch (const YAML::Exception&) {
      Fail(key, std::string("expected ") + TypeName<T>() + ", got " + Describe(value));
    }
  }
}

template <typename T>
T ConfigSection::Get(const std::string& key, const T& fallback) {
  T value = Has(key) ? Convert<T>(key, node_[key]) : fallback;
  resolved_[key] = value;
  return value;
}

template <typename T>
T ConfigSection::Require(const std::string& key) {
  if (!Has(key)) Fail(key, "required key is missing");
  return Get<T>(key, T{});
}

template <typename T>
T ConfigSection::GetAliased(const std::string& key, const std::string& alias,
                            const T& fallback) {
  if (!Has(alias)) return Get<T>(key, fallback);
  if (Has(key)) {
    Fail(alias, "is ACT's name for " + KeyPath(key) + ", which is also given; keep one of the "
                "two");
  }
  T value = Convert<T>(alias, node_[alias]);
  resolved_[key] = value;
  return value;
}

void ConfigSection::Ignore(const std::string& key, const std::string& why) {
  if (IsWritten(key)) logging::Warning(Where(key) + ": ignored: " + why);
}

ConfigSection ConfigSection::Section(const std::string& key) {
  YAML::Node child;
  if (Has(key)) {
    child = node_[key];
    if (!child.IsMap()) Fail(key, "expected a mapping, got " + Describe(child));
  }
  resolved_[key] = YAML::Node(YAML::NodeType::Map);
  return ConfigSection(child, KeyPath(key), file_, resolved_[key]);
}

std::vector<ConfigSection> ConfigSection::Sections(const std::string& key) {
  std::vector<ConfigSection> sections;
  resolved_[key] = YAML::Node(YAML::NodeType::Sequence);
  if (!Has(key)) return sections;
  const YAML::Node list = node_[key];
  if (!list.IsSequence()) Fail(key, "expected a list of mappings, got " + Describe(list));
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item = key + "[" + std::to_string(i) + "]";
    if (!list[i].IsMap()) Fail(key, item + ": expected a mapping, got " + Describe(list[i]));
    resolved_[key].push_back(YAML::Node(YAML::NodeType::Map));
    sections.emplace_back(list[i], KeyPath(item), file_, resolved_[key][i]);
  }
  return sections;
}

std::vector<std::string> ConfigSection::Keys() const {
  std::vector<std::string> keys;
  if (!node_.IsMap()) return keys;
  for (const auto& entry : node_) keys.push_back(entry.first.as<std::string>());
  return keys;
}

void ConfigSection::RejectUnknownKeys() const {
  if (!node_.IsMap()) return;
  std::vector<std::string> known(known_keys_->begin(), known_keys_->end());
  for (const auto& entry : node_) {
    const auto key = entry.first.as<std::string>();
    if (known_keys_->count(key)) continue;
    std::string problem = "unknown key";
    const std::string nearest = NearestWord(key, known);
    if (!nearest.empty()) {
      problem += "; did you mean '" + nearest + "'?";
    } else if (!known.empty()) {
      std::ostringstream list;
      for (size_t i = 0; i < known.size(); ++i) list << (i ? ", " : "") << known[i];
      problem += "; valid keys here: " + list.str();
    }
    Fail(key, problem);
  }
}

std::string ConfigSection::Where(const std::string& key) const {
  YAML::Node at = (node_.IsMap() && node_[key]) ? node_[key] : node_;
  return Location(at) + ": " + KeyPath(key);
}

void ConfigSection::Fail(const std::string& key, const std::string& problem) const {
  throw ConfigError(Where(key) + ": " + problem);
}

void ConfigSection::CheckChoice(const std::string& key, const std::string& value,
                                const std::vector<std::string>& valid) const {
  if (std::find(valid.begin(), valid.end(), value) != valid.end()) return;
  const std::string nearest = NearestWord(value, valid);
  Fail(key, "unknown value '" + value + "'" +
                (nearest.empty() ? "" : "; did you mean '" + nearest + "'?") + " Valid: " +
                JoinedList(valid));
}

template <typename T>
void ConfigSection::CheckRange(const std::string& key, T value, T low, T high) const {
  if (value < low || value > high) {
    std::ostringstream problem;
    problem << "value " << value << " is out of range; it must lie in [" << low << ", " << high
            << "]";
    Fail(key, problem.str());
  }
}

std::string ConfigSection::KeyPath(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

std::string ConfigSection::Location(const YAML::Node& node) const {
  if (!node.IsDefined() || node.Mark().is_null()) return file_ + " (or --set)";
  return file_ + ":" + std::to_string(node.Mark().line + 1);
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitution = diagonal + (std::tolower(a[i - 1]) != std::tolower(b[j - 1]));
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
    }
  }
  return row[b.size()];
}

std::string NearestWord(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    const size_t distance = EditDistance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

#define SLIM_INSTANTIATE_CONFIG_TYPE(T)                                     \
  template T ConfigSection::Get<T>(const std::string&, const T&);           \
  template T ConfigSection::Require<T>(const std::string&);                 \
  template T ConfigSection::GetAliased<T>(const std::string&, const std::string&, const T&);
SLIM_INSTANTIATE_CONFIG_TYPE(bool)
SLIM_INSTANTIATE_CONFIG_TYPE(int64_t)
SLIM_INSTANTIATE_CONFIG_TYPE(double)
SLIM_INSTANTIATE_CONFIG_TYPE(std::string)
SLIM_INSTANTIATE_CONFIG_TYPE(std::vector<int64_t>)
SLIM_INSTANTIATE_CONFIG_TYPE(std::vector<double>)
SLIM_INSTANTIATE_CONFIG_TYPE(std::vector<std::string>)
SLIM_INSTANTIATE_CONFIG_TYPE(std::vector<std::vector<std::string>>)
#undef SLIM_INSTANTIATE_CONFIG_TYPE
template void ConfigSection::CheckRange<int64_t>(const std::string&, int64_t, int64_t,
                                                 int64_t) const;
template void ConfigSection::CheckRange<double>(const std::string&, double, double, double) const;

}  // namespace slim::config
