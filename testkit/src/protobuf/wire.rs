//! The protobuf wire format, read: keys, varints, fixed-width numbers and length-delimited bytes.
//!
//! Written here rather than taken from `prost`, whose readers (`prost::encoding`) are
//! `#[doc(hidden)]` internals of its generated code; the format is small and fixed
//! (<https://protobuf.dev/programming-guides/encoding/>).

/// One field's value as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Wire<'a> {
    /// Wire type 0: int32, int64, uint32, uint64, bool, enum.
    Varint(u64),
    /// Wire type 1: double, fixed64.
    Fixed64(u64),
    /// Wire type 2: string, bytes, an embedded message, a map entry or packed numbers.
    Bytes(&'a [u8]),
    /// Wire type 5: float, fixed32.
    Fixed32(u32),
}

/// Reads the fields of one message in order.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// A base-128 varint (at most ten bytes).
    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err("a varint is truncated or longer than ten bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err(format!(
                "a field claims {n} bytes but only {} remain",
                self.buf.len()
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("eight bytes"),
        ))
    }

    pub(crate) fn fixed32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("four bytes"),
        ))
    }

    /// The next field: its number and value; `None` at the end of the message.
    pub(crate) fn field(&mut self) -> Option<Result<(u32, Wire<'a>), String>> {
        if self.buf.is_empty() {
            return None;
        }
        Some(self.read_field())
    }

    fn read_field(&mut self) -> Result<(u32, Wire<'a>), String> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("field number {} is out of range", key >> 3))?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(self.fixed64()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "a length overflows")?;
                Wire::Bytes(self.take(len)?)
            }
            5 => Wire::Fixed32(self.fixed32()?),
            other => {
                return Err(format!(
                    "field {number} has wire type {other}, which Kubernetes types do not use"
                ));
            }
        };
        Ok((number, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_wire_type() {
        // field 1 varint 300, field 2 bytes "hi", field 3 fixed64 1.5, field 4 fixed32 7
        let mut buf = vec![0x08, 0xac, 0x02, 0x12, 2, b'h', b'i', 0x19];
        buf.extend(1.5f64.to_bits().to_le_bytes());
        buf.push(0x25);
        buf.extend(7u32.to_le_bytes());
        let mut r = Reader::new(&buf);
        assert_eq!(r.field().unwrap().unwrap(), (1, Wire::Varint(300)));
        assert_eq!(r.field().unwrap().unwrap(), (2, Wire::Bytes(b"hi")));
        assert_eq!(
            r.field().unwrap().unwrap(),
            (3, Wire::Fixed64(1.5f64.to_bits()))
        );
        assert_eq!(r.field().unwrap().unwrap(), (4, Wire::Fixed32(7)));
        assert!(r.field().is_none());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for bad in [
            &[0x12, 5, b'a'][..],
            &[0x08, 0xff][..],
            &[0x0b][..],
            &[0x19, 1, 2][..],
        ] {
            assert!(Reader::new(bad).field().unwrap().is_err(), "{bad:?}");
        }
    }
}
