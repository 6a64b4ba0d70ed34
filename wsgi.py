from riskservice.process import serve

app = serve()
