namespace Streaming.Tests;
public class T { [Xunit.Fact] public void Torch() => Xunit.Assert.Equal("2", Streaming.Models.Y.V()); }
