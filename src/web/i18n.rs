//! Page texts, one JSON file per language under `src/web/assets/i18n/`
//! (`en.json` is the default and the fallback for any key a translation
//! lacks). Adding a language is adding a file: the languages offered are
//! the files embedded. Owns the choice of language for a request.

use actix_web::http::header;
use actix_web::HttpRequest;
use serde_json::{Map, Value};

use super::assets;

pub const DEFAULT: &str = "en";

/// The languages that have a texts file, sorted.
pub fn languages() -> Vec<String> {
    let mut found: Vec<String> = assets::paths()
        .filter_map(|p| {
            p.strip_prefix("i18n/")
                .and_then(|f| f.strip_suffix(".json"))
                .map(str::to_owned)
        })
        .collect();
    found.sort();
    found
}

/// The language of a request: `?lang=` when offered, else the first offered
/// language of `Accept-Language` (by its primary subtag), else English.
pub fn choose(req: &HttpRequest) -> String {
    let offered = languages();
    let asked = req
        .query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("lang="))
        .map(str::to_owned);
    if let Some(lang) = asked.filter(|l| offered.contains(l)) {
        return lang;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut weighted: Vec<(f32, String)> = accept
        .split(',')
        .filter_map(|part| {
            let mut fields = part.trim().split(';');
            let tag = fields.next()?.trim().to_ascii_lowercase();
            let primary = tag.split('-').next()?.to_owned();
            let q = fields
                .find_map(|f| f.trim().strip_prefix("q="))
                .and_then(|q| q.parse().ok())
                .unwrap_or(1.0);
            Some((q, primary))
        })
        .collect();
    weighted.sort_by(|a, b| b.0.total_cmp(&a.0));
    weighted
        .into_iter()
        .map(|(_, lang)| lang)
        .find(|lang| offered.contains(lang))
        .unwrap_or_else(|| DEFAULT.to_owned())
}

fn load(lang: &str) -> Map<String, Value> {
    assets::text(&format!("i18n/{lang}.json"))
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|value| match value {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default()
}

/// The texts of a language, English filling what it lacks.
pub fn texts(lang: &str) -> Map<String, Value> {
    let mut merged = load(DEFAULT);
    if lang != DEFAULT {
        merged.extend(load(lang));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_file_is_an_object_of_strings_with_the_english_keys() {
        let english = load(DEFAULT);
        assert!(english.len() > 20, "English texts are present");
        for lang in languages() {
            let texts = load(&lang);
            assert!(!texts.is_empty(), "{lang}.json parses as an object");
            for (key, value) in &texts {
                assert!(value.is_string(), "{lang}.{key} is a string");
                assert!(
                    english.contains_key(key),
                    "{lang}.{key} is not an English key"
                );
            }
            let missing: Vec<&String> =
                english.keys().filter(|k| !texts.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
        assert!(languages().contains(&"pt".to_owned()));
    }

    #[test]
    fn every_text_a_page_script_asks_for_exists() {
        let english = load(DEFAULT);
        let mut asked = 0;
        for path in assets::paths().filter(|p| p.ends_with(".js")) {
            let script = assets::text(&path).expect("a script is text");
            // t('key' …): the literal keys; the few built from a role or a
            // status are listed below.
            for (at, _) in script.match_indices("t('") {
                // `t(` itself, not the end of `get(` or `.set(`.
                let before = script[..at].chars().next_back().unwrap_or(' ');
                if before.is_ascii_alphanumeric() || before == '_' || before == '.' {
                    continue;
                }
                let rest = &script[at + 3..];
                let key: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                // A key ending in '_' is a prefix completed at run time.
                if rest[key.len()..].starts_with('\'') && !key.ends_with('_') {
                    asked += 1;
                    assert!(english.contains_key(&key), "{path} asks for {key:?}");
                }
            }
        }
        assert!(asked > 50, "found {asked} texts asked for");
        for key in [
            "token_label_kiosk",
            "token_label_display",
            "token_label_operator",
            "phone_status_served",
            "phone_status_no_show",
            "phone_status_closed",
        ] {
            assert!(english.contains_key(key), "{key}");
        }
    }
}
