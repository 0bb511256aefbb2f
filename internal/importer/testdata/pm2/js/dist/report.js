console.log("report")
