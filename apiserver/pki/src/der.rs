//! The few DER pieces rcgen cannot produce for us: PKCS#8 wrapping of legacy
//! keys and subjects with several Organization values.

/// Encodes one tag-length-value.
pub(crate) fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}

/// Length of the complete TLV at the start of `bytes` (header + content).
pub(crate) fn tlv_len(bytes: &[u8]) -> Option<usize> {
    let first = *bytes.get(1)?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 8 {
        return None;
    }
    let len = bytes
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Some(2 + n + len)
}

/// Header length of the TLV at the start of `bytes`.
pub(crate) fn header_len(bytes: &[u8]) -> Option<usize> {
    let first = *bytes.get(1)?;
    Some(if first < 0x80 {
        2
    } else {
        2 + (first & 0x7f) as usize
    })
}

const OID_CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0a];

/// X.501 Name laid out as Go writes it: the O values, then CN, as UTF8Strings.
pub(crate) fn subject_name(common_name: &str, organizations: &[String]) -> Vec<u8> {
    let rdn = |oid: &[u8], value: &str| {
        let atv = [oid, &tlv(0x0c, value.as_bytes())].concat();
        tlv(0x31, &tlv(0x30, &atv))
    };
    let mut body = Vec::new();
    for o in organizations {
        body.extend(rdn(OID_O, o));
    }
    body.extend(rdn(OID_CN, common_name));
    tlv(0x30, &body)
}
