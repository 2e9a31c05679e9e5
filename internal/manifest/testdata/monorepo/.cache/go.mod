module hidden
