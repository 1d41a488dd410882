//! Header maps as Envoy keeps them, and the ABI's serialised pair format.

/// An ordered multi-map of headers. Keys are lower-cased on the way in, as
/// Envoy's `LowerCaseString` does; values are bytes because Envoy accepts
/// header values that are not UTF-8.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, Vec<u8>)>,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_pairs<K: AsRef<str>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Self {
        let mut map = Self::new();
        for (k, v) in pairs {
            map.add(k.as_ref(), v.as_ref());
        }
        map
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first value of `key`, as Envoy's `get_header_map_value` returns it.
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `key` as text (lossy for bytes that are not UTF-8).
    pub fn get(&self, key: &str) -> Option<String> {
        self.get_bytes(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Every value of `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<String> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    pub fn add(&mut self, key: &str, value: &[u8]) {
        self.entries
            .push((key.to_ascii_lowercase(), value.to_vec()));
    }

    /// Envoy's `setCopy`: replaces the FIRST entry of `key` and leaves any
    /// later duplicates in place (envoyproxy/envoy#9221), else appends.
    pub fn replace(&mut self, key: &str, value: &[u8]) {
        let key = key.to_ascii_lowercase();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value.to_vec(),
            None => self.entries.push((key, value.to_vec())),
        }
    }

    pub fn remove(&mut self, key: &str) {
        let key = key.to_ascii_lowercase();
        self.entries.retain(|(k, _)| *k != key);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The pairs as text, for assertions and failure messages.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    /// Serialises to the ABI format: a u32 count, then a (key length, value
    /// length) u32 pair per entry, then each key and value NUL-terminated.
    pub(crate) fn marshal(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (k, v) in &self.entries {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        for (k, v) in &self.entries {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    /// Parses the ABI format. Like proxy-wasm-cpp-host's `toPairs`, a buffer
    /// too short for its count yields an empty map; unlike it, strings that
    /// run past the end are refused (`None`) instead of read out of bounds.
    pub(crate) fn unmarshal(bytes: &[u8]) -> Option<Self> {
        let word = |at: usize| -> Option<usize> {
            let b = bytes.get(at..at + 4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let Some(count) = word(0) else {
            return Some(Self::new());
        };
        if count
            .checked_mul(8)
            .and_then(|n| n.checked_add(4))
            .is_none_or(|end| end > bytes.len())
        {
            return Some(Self::new());
        }
        let mut map = Self::new();
        let mut at = 4 + count * 8;
        for i in 0..count {
            let (klen, vlen) = (word(4 + i * 8)?, word(8 + i * 8)?);
            let key = bytes.get(at..at.checked_add(klen)?)?;
            at = at.checked_add(klen + 1)?;
            let value = bytes.get(at..at.checked_add(vlen)?)?;
            at = at.checked_add(vlen + 1)?;
            map.entries.push((
                String::from_utf8_lossy(key).to_ascii_lowercase(),
                value.to_vec(),
            ));
        }
        Some(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshal_round_trips() {
        let map = HeaderMap::from_pairs(&[(":path", "/a"), ("X-Key", "v"), ("x-key", "w")]);
        let back = HeaderMap::unmarshal(&map.marshal()).expect("parses");
        assert_eq!(back, map);
        assert_eq!(back.get_all("x-key"), ["v", "w"]);
    }

    #[test]
    fn replace_keeps_later_duplicates_like_envoy() {
        let mut map = HeaderMap::from_pairs(&[("a", "1"), ("a", "2")]);
        map.replace("A", b"3");
        assert_eq!(map.get_all("a"), ["3", "2"]);
    }

    #[test]
    fn truncated_buffers_do_not_panic() {
        assert_eq!(HeaderMap::unmarshal(&[1, 0]), Some(HeaderMap::new()));
        assert_eq!(
            HeaderMap::unmarshal(&[1, 0, 0, 0, 9, 0, 0, 0]),
            Some(HeaderMap::new())
        );
        assert_eq!(
            HeaderMap::unmarshal(&[1, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0]),
            None
        );
    }
}
