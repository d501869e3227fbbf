print("mingusctl")
