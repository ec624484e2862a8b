namespace Streaming.Core;

/// <summary>
/// A failure caused by the user's input (a missing path, a corrupt shard, a bad manifest), reported
/// to the user as one line that names the file and the problem, never as a stack trace.
/// </summary>
public class StreamingException : Exception
{
    public StreamingException(string message) : base(message) { }
    public StreamingException(string message, Exception inner) : base(message, inner) { }
}
