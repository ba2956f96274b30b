"""The LangChain / LangGraph corpus: apps written the way public tutorials write them."""
