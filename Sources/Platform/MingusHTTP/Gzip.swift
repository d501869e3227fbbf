import CZlib

/// gzip (RFC 1952) through zlib: retention archive files, request bodies sent with
/// `Content-Encoding: gzip`.
public enum Gzip {
    /// zlib refused the data (not gzip, truncated, corrupt).
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The data inflates to more than the limit given.
    public struct TooLarge: Error, CustomStringConvertible {
        public var limit: Int
        public var description: String { "the data inflates to more than \(limit) bytes" }
    }

    /// The gzip member holding `data`.
    public static func compress(_ data: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        var stream = z_stream()
        guard mingus_deflate_init_gzip(&stream, level) == Z_OK else { throw Failure(description: "zlib: deflateInit2 failed") }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(data.count))) + 32)
        var input = data
        let status = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_in = source.baseAddress
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = uInt(target.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw Failure(description: "zlib: deflate ended with \(status)") }
        output.removeSubrange(Int(stream.total_out)...)
        return output
    }

    /// The data in a gzip member; throws ``TooLarge`` as soon as it passes `limit` bytes.
    public static func decompress(_ data: [UInt8], limit: Int = .max) throws -> [UInt8] {
        var stream = z_stream()
        guard mingus_inflate_init_gzip(&stream) == Z_OK else { throw Failure(description: "zlib: inflateInit2 failed") }
        defer { inflateEnd(&stream) }
        var input = data
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { target -> (Int32, Int) in
                    stream.next_out = target.baseAddress
                    stream.avail_out = uInt(target.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    return (status, target.count - Int(stream.avail_out))
                }
                guard result.count + produced <= limit else { throw TooLarge(limit: limit) }
                result.append(contentsOf: chunk[0..<produced])
                if status == Z_STREAM_END { return }
                guard status == Z_OK else { throw Failure(description: "zlib: not a valid gzip member (\(status))") }
            }
        }
        return result
    }
}
